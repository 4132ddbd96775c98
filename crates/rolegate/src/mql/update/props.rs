//! Step-budget properties of the update language: the work of an update on large inputs
//! (`$[]` over a big array, `$push` with a big `$each` and `$sort`, filtered arrays, `$pull`
//! conditions, deep paths) is charged to the step budget in proportion to the input and output
//! sizes (times a logarithm for sorting), measured with [`StepBudget::spent`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use bson::{Bson, Document, doc};
use proptest::prelude::*;

use super::{Update, UpdateContext};
use crate::steps::StepBudget;

/// The shapes of large update work.
#[derive(Debug, Clone, Copy)]
enum Shape {
    AllPositional,
    PushEachSorted,
    Filtered,
    PullCondition,
    DeepPath,
    PadArray,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::AllPositional),
        Just(Shape::PushEachSorted),
        Just(Shape::Filtered),
        Just(Shape::PullCondition),
        Just(Shape::DeepPath),
        Just(Shape::PadArray),
    ]
}

/// The document, update and array filters of `shape` at size `n`.
fn input(shape: Shape, n: usize) -> (Document, Document, Vec<Document>) {
    let ints = |n: usize| -> Vec<Bson> { (0..n).map(|i| Bson::Int64(i as i64 * 7 % 13)).collect() };
    match shape {
        Shape::AllPositional => (doc! {"a": ints(n)}, doc! {"$inc": {"a.$[]": 1}}, vec![]),
        Shape::PushEachSorted => (
            doc! {"a": ints(n)},
            doc! {"$push": {"a": {"$each": ints(n), "$sort": -1, "$slice": -5}}},
            vec![],
        ),
        Shape::Filtered => {
            let docs: Vec<Bson> = (0..n)
                .map(|i| Bson::Document(doc! {"c": i as i64 % 3}))
                .collect();
            (
                doc! {"a": docs},
                doc! {"$set": {"a.$[x].b": 1}},
                vec![doc! {"x.c": {"$gt": 0}}],
            )
        }
        Shape::PullCondition => (
            doc! {"a": ints(n)},
            doc! {"$pull": {"a": {"$in": [1, 2, 3]}}},
            vec![],
        ),
        Shape::DeepPath => {
            let depth = n % 99 + 1;
            let path = vec!["p"; depth].join(".");
            (doc! {}, doc! {"$set": {path: ints(n)}}, vec![])
        }
        Shape::PadArray => (doc! {"a": []}, doc! {"$set": {format!("a.{n}"): 1}}, vec![]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        ..crate::test_support::persisted("proptest-regressions/mql_update_steps.txt")
    })]

    /// Steps spent grow at most like `n log n` for every shape, well inside the budget.
    #[test]
    fn update_work_is_charged_in_proportion_to_its_size(shape in shape(), n in 1usize..20_000) {
        let (document, update, filters) = input(shape, n);
        let update = Update::parse(&update, &filters).unwrap();
        let outer = StepBudget::start(u64::MAX);
        let result = update.apply(&document, &UpdateContext::default());
        let spent = outer.spent();
        prop_assert!(result.is_ok(), "{shape:?} n={n}: {result:?}");
        let log = u64::from(usize::BITS - n.leading_zeros()) + 1;
        let bound = 20 * (n as u64) * log + 200;
        prop_assert!(spent <= bound, "{shape:?} n={n}: {spent} steps > {bound}");
        // And at least the input is paid for: the charge is not a constant.
        prop_assert!(spent as usize >= n.min(99), "{shape:?} n={n}: only {spent} steps");
    }
}

#[test]
fn quadratic_add_to_set_is_stopped_by_the_budget() {
    let items: Vec<Bson> = (0..5000).map(|i| Bson::Int64(-i - 1)).collect();
    let each: Vec<Bson> = (0..5000).map(Bson::Int64).collect();
    let update = Update::parse(&doc! {"$addToSet": {"a": {"$each": each}}}, &[]).unwrap();
    let err = update
        .apply(&doc! {"a": items}, &UpdateContext::default())
        .unwrap_err();
    assert_eq!(err.code_name(), "LimitExceeded");
}
