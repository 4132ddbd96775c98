//! Filters and queries (spec §4): which filters apply to a request, the client query merged with
//! theirs (`$and`, canonical form), the merged projection, and an in-memory MongoDB query and
//! projection evaluator that runs a merged plan over documents.
