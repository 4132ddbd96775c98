//! Outcomes of evaluation.
