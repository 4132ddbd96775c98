//! Stage: `GET /api/client/v2.0/app/{app}/location`. Input: the app id. Output:
//! `{deployment_model, location, hostname, ws_hostname}`: `hostname` is the public URL (clients
//! send every later request there), `ws_hostname` the same with `ws(s)://` (realm-core requires
//! it; Device Sync is not served). An unknown app id: 404 `AppNotFound`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;

use crate::http::LogFields;
use crate::state::AppState;

use super::finish;

/// The handler.
pub async fn location(State(state): State<Arc<AppState>>, Path(app_id): Path<String>) -> Response {
    let fields = LogFields {
        user: None,
        operation: Some("location".to_string()),
    };
    let result = state.check_app(&app_id).map(|()| {
        let url = &state.public_url;
        let ws = match url.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", url.trim_start_matches("http://")),
        };
        Json(serde_json::json!({
            "deployment_model": state.settings.deployment_model,
            "location": state.settings.location,
            "hostname": url,
            "ws_hostname": ws,
        }))
    });
    finish(fields, result)
}
