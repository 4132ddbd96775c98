// Posts a message to the team's Slack channel. Callable by admins only (see can_evaluate in
// functions/config.json). The webhook URL is the value `slackWebhookUrl`, which is backed by the
// secret `slackWebhookUrlSecret`: create that secret before deploying the app.
exports = async function (text) {
  const url = context.values.get("slackWebhookUrl");
  const response = await context.http.post({
    url,
    headers: { "Content-Type": ["application/json"] },
    body: JSON.stringify({ text }),
  });
  return { status: response.statusCode };
};
