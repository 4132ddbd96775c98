//! Stage: residual building blocks. Input: MongoDB queries built from rule parts. Output: a
//! query or a constant ([`Q`]) and a pair of them bounding a rule's truth from above and below
//! ([`Approx`]), combined with `and`, `or` and `not`.
//!
//! `over` holds on every document where the rule part may hold (a superset); `under` holds
//! only where it surely holds (a subset). Negation swaps them (`not over` is a subset of `not
//! rule`), so first-match role order — role *i* applies only where every earlier `apply_when`
//! is false — stays sound. A part rolegate cannot express is `over = true`, `under = false`.

use bson::{Bson, Document};

/// A MongoDB query, or a constant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Q {
    /// Every document.
    True,
    /// No document.
    False,
    /// The documents the query matches (never `{}`: that is [`Q::True`]).
    Query(Document),
}

impl Q {
    /// A one-clause query `{path: condition}`.
    pub(crate) fn field(path: &str, condition: Bson) -> Q {
        let mut d = Document::new();
        d.insert(path, condition);
        Q::Query(d)
    }

    /// `{path: {op: value}}`.
    pub(crate) fn op(path: &str, op: &str, value: Bson) -> Q {
        let mut c = Document::new();
        c.insert(op, value);
        Q::field(path, Bson::Document(c))
    }

    pub(crate) fn and(self, other: Q) -> Q {
        match (self, other) {
            (Q::False, _) | (_, Q::False) => Q::False,
            (Q::True, q) | (q, Q::True) => q,
            (Q::Query(a), Q::Query(b)) if a == b => Q::Query(a),
            (Q::Query(a), Q::Query(b)) => Q::Query(list("$and", a, b)),
        }
    }

    pub(crate) fn or(self, other: Q) -> Q {
        match (self, other) {
            (Q::True, _) | (_, Q::True) => Q::True,
            (Q::False, q) | (q, Q::False) => q,
            (Q::Query(a), Q::Query(b)) if a == b => Q::Query(a),
            (Q::Query(a), Q::Query(b)) => Q::Query(list("$or", a, b)),
        }
    }

    pub(crate) fn not(self) -> Q {
        match self {
            Q::True => Q::False,
            Q::False => Q::True,
            Q::Query(q) => {
                // `$nor` of one `$nor`: the query itself.
                if q.len() == 1
                    && let Some(Bson::Array(items)) = q.get("$nor")
                    && let [Bson::Document(inner)] = items.as_slice()
                {
                    return Q::Query(inner.clone());
                }
                let mut d = Document::new();
                d.insert("$nor", vec![Bson::Document(q)]);
                Q::Query(d)
            }
        }
    }
}

/// `{op: [a..., b...]}`, flattening operands that are already `{op: [...]}`. The operands'
/// lists are moved, never copied, and `a`'s is extended in place, so folding `n` queries into
/// one list takes linear time.
fn list(op: &str, a: Document, b: Document) -> Document {
    let mut items = operands(op, a);
    items.extend(operands(op, b));
    let mut d = Document::new();
    d.insert(op, items);
    d
}

/// The operands of `q` under `op`: its list when `q` is `{op: [...]}`, else `q` itself.
fn operands(op: &str, mut q: Document) -> Vec<Bson> {
    if q.len() == 1
        && matches!(q.get(op), Some(Bson::Array(_)))
        && let Some(Bson::Array(inner)) = q.remove(op)
    {
        return inner;
    }
    vec![Bson::Document(q)]
}

/// Bounds of a rule part's truth: `under` ⊆ truth ⊆ `over`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Approx {
    pub(crate) over: Q,
    pub(crate) under: Q,
}

impl Approx {
    /// A part whose query is its truth.
    pub(crate) fn exact(q: Q) -> Approx {
        Approx {
            over: q.clone(),
            under: q,
        }
    }

    /// A constant.
    pub(crate) fn constant(b: bool) -> Approx {
        Approx::exact(if b { Q::True } else { Q::False })
    }

    /// A part rolegate cannot express: anything may hold.
    pub(crate) fn unknown() -> Approx {
        Approx {
            over: Q::True,
            under: Q::False,
        }
    }

    /// Known to hold somewhere within `over` only.
    pub(crate) fn at_most(over: Q) -> Approx {
        Approx {
            over,
            under: Q::False,
        }
    }

    pub(crate) fn is_exact(&self) -> bool {
        self.over == self.under
    }

    pub(crate) fn and(self, other: Approx) -> Approx {
        Approx {
            over: self.over.and(other.over),
            under: self.under.and(other.under),
        }
    }

    pub(crate) fn or(self, other: Approx) -> Approx {
        Approx {
            over: self.over.or(other.over),
            under: self.under.or(other.under),
        }
    }

    pub(crate) fn not(self) -> Approx {
        Approx {
            over: self.under.not(),
            under: self.over.not(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn constants_fold_and_lists_flatten() {
        let a = Q::Query(doc! {"a": 1});
        let b = Q::Query(doc! {"b": 1});
        let c = Q::Query(doc! {"c": 1});
        assert_eq!(a.clone().and(Q::True), a);
        assert_eq!(a.clone().and(Q::False), Q::False);
        assert_eq!(a.clone().or(Q::True), Q::True);
        assert_eq!(
            a.clone().and(b.clone()).and(c.clone()),
            Q::Query(doc! {"$and": [{"a": 1}, {"b": 1}, {"c": 1}]})
        );
        assert_eq!(
            a.clone().or(b).or(c),
            Q::Query(doc! {"$or": [{"a": 1}, {"b": 1}, {"c": 1}]})
        );
        assert_eq!(a.clone().not(), Q::Query(doc! {"$nor": [{"a": 1}]}));
        assert_eq!(a.clone().not().not(), a);
    }

    #[test]
    fn negation_swaps_the_bounds() {
        let part = Approx {
            over: Q::Query(doc! {"a": 1}),
            under: Q::False,
        };
        let not = part.clone().not();
        assert_eq!(not.over, Q::True);
        assert_eq!(not.under, Q::Query(doc! {"$nor": [{"a": 1}]}));
        assert!(!part.is_exact());
        assert!(Approx::exact(Q::True).is_exact());
    }
}
