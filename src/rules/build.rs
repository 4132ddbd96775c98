//! Stage: raw rule JSON → validated [`RuleSet`](super::RuleSet).
