//! The reference evaluator: a direct, obviously-correct walk over the validated rules.
