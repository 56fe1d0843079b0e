//! Tests of the sum and min trees against brute force.

use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Inclusive prefix sums `S(k) = v[0] + ... + v[k]`, summed left to right.
fn prefix_sums(values: &[f64]) -> Vec<f64> {
    values
        .iter()
        .scan(0.0, |acc, &v| {
            *acc += v;
            Some(*acc)
        })
        .collect()
}

/// The smallest `i` with `S(i) > max(mass, 0)`, or the last positive leaf when there is
/// none.
fn brute_find_prefix(values: &[f64], sums: &[f64], mass: f64) -> usize {
    match sums.iter().position(|&s| s > mass.max(0.0)) {
        Some(i) => i,
        None => values.iter().rposition(|&v| v > 0.0).unwrap_or(0),
    }
}

/// `find_prefix(mass)` agrees with the linear scan, up to rounding: when they differ, the
/// mass must lie within `tol` of the boundary between the two answers.
fn check_find_prefix(tree: &SumTree, values: &[f64], sums: &[f64], mass: f64, tol: f64) {
    let got = tree.find_prefix(mass);
    assert!(got < tree.capacity(), "mass {mass}: index {got} past the capacity");
    assert!(values[got] > 0.0, "mass {mass}: leaf {got} has value {}", values[got]);
    let want = brute_find_prefix(values, sums, mass);
    if got != want {
        let (a, b) = (got.min(want), got.max(want));
        assert!(
            (sums[a] - mass).abs() <= tol && (sums[b - 1] - mass).abs() <= tol,
            "mass {mass}: tree gives {got}, scan gives {want} (S({a}) = {}, S({}) = {})",
            sums[a],
            b - 1,
            sums[b - 1]
        );
    }
}

fn rel_close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) || a == b
}

const CAPACITIES: [usize; 8] = [1, 2, 3, 5, 8, 100, 1000, 4097];

#[test]
fn sum_and_min_trees_match_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for capacity in CAPACITIES {
        let mut sum = SumTree::new(capacity);
        let mut min = MinTree::new(capacity);
        let mut values = vec![0.0; capacity];
        let mut min_values = vec![f64::INFINITY; capacity];
        for _batch in 0..40 {
            for _ in 0..(capacity / 4).max(3) {
                let i = rng.random_range(0..capacity);
                // Zeros, ordinary values and a spread of magnitudes.
                let v = match rng.random_range(0..4) {
                    0 => 0.0,
                    1 => rng.random::<f64>(),
                    2 => rng.random::<f64>() * 1e3,
                    _ => rng.random::<f64>() * 1e-3,
                };
                sum.set(i, v).unwrap();
                values[i] = v;
                let m = rng.random_range(-5.0..5.0);
                min.set(i, m).unwrap();
                min_values[i] = m;
            }
            assert_eq!(sum.values(), &values[..]);
            assert_eq!(min.values(), &min_values[..]);
            let brute_total: f64 = values.iter().sum();
            assert!(rel_close(sum.total(), brute_total, 1e-9), "{} vs {brute_total}", sum.total());
            let brute_min = min_values.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(min.min(), brute_min);

            if sum.total() > 0.0 {
                let sums = prefix_sums(&values);
                let tol = 1e-9 * sum.total();
                for _ in 0..200 {
                    let mass = rng.random::<f64>() * sum.total();
                    check_find_prefix(&sum, &values, &sums, mass, tol);
                }
            }
        }
    }
}

#[test]
fn dyadic_values_match_the_scan_exactly_even_on_boundaries() {
    // Multiples of 1/8 below 2^40 add up exactly, so the tree and the scan must agree on
    // every mass, including masses equal to a prefix sum.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for capacity in CAPACITIES {
        let mut tree = SumTree::new(capacity);
        let mut values = vec![0.0; capacity];
        for _ in 0..3 * capacity {
            let i = rng.random_range(0..capacity);
            let v =
                if rng.random_bool(0.3) { 0.0 } else { f64::from(rng.random_range(1..64)) / 8.0 };
            tree.set(i, v).unwrap();
            values[i] = v;
        }
        let sums = prefix_sums(&values);
        assert_eq!(tree.total(), *sums.last().unwrap());
        let mut masses: Vec<f64> = sums.iter().flat_map(|&s| [s - 0.125, s, s + 0.0625]).collect();
        masses.extend((0..500).map(|_| rng.random::<f64>() * tree.total()));
        masses.push(0.0);
        for mass in masses {
            if tree.total() == 0.0 {
                assert_eq!(tree.find_prefix(mass), 0);
                continue;
            }
            let got = tree.find_prefix(mass);
            assert_eq!(
                got,
                brute_find_prefix(&values, &sums, mass),
                "capacity {capacity}, mass {mass}"
            );
            assert!(values[got] > 0.0);
        }
    }
}

#[test]
fn non_power_of_two_capacities_round_up_with_neutral_padding() {
    for capacity in [1, 3, 5, 1000] {
        let mut sum = SumTree::new(capacity);
        let mut min = MinTree::new(capacity);
        assert_eq!(sum.capacity(), capacity);
        assert_eq!(min.capacity(), capacity);
        assert_eq!(sum.tree.leaves, capacity.next_power_of_two());
        assert_eq!(sum.tree.nodes.len(), 2 * capacity.next_power_of_two());
        assert_eq!(sum.total(), 0.0);
        assert_eq!(min.min(), f64::INFINITY);
        for i in 0..capacity {
            sum.set(i, 1.0).unwrap();
            min.set(i, 2.0 + i as f64).unwrap();
        }
        assert_eq!(sum.total(), capacity as f64);
        assert_eq!(min.min(), 2.0);
        assert_eq!(sum.get(capacity), None);
        assert_eq!(min.get(capacity), None);
        assert_eq!(sum.get(capacity - 1), Some(1.0));
        // Padding leaves keep their neutral element and are never sampled.
        assert!(sum.tree.nodes[sum.tree.leaves + capacity..].iter().all(|&v| v == 0.0));
        assert!(min.tree.nodes[min.tree.leaves + capacity..].iter().all(|&v| v == f64::INFINITY));
        let total = sum.total();
        for k in 0..=4 * capacity {
            let mass = total * k as f64 / (4 * capacity) as f64;
            let i = sum.find_prefix(mass);
            assert!(i < capacity, "capacity {capacity}, mass {mass}: {i}");
            if mass < total {
                assert_eq!(i, (mass as usize).min(capacity - 1));
            }
        }
        for mass in [f64::INFINITY, f64::NAN, f64::MAX, total * 2.0] {
            assert_eq!(sum.find_prefix(mass), capacity - 1);
        }
    }
}

#[test]
fn find_prefix_boundaries_return_positive_leaves() {
    let mut tree = SumTree::new(7);
    // Zeros at both ends and in the middle.
    for (i, v) in [0.0, 0.3, 0.0, 0.1, 0.2, 0.0, 0.0].into_iter().enumerate() {
        tree.set(i, v).unwrap();
    }
    let total = tree.total();
    let just_below = f64::from_bits(total.to_bits() - 1);
    assert_eq!(tree.find_prefix(0.0), 1, "mass 0: first positive leaf");
    assert_eq!(tree.find_prefix(-0.0), 1);
    assert_eq!(tree.find_prefix(-1.0), 1, "negative mass is clamped to 0");
    assert_eq!(tree.find_prefix(f64::NEG_INFINITY), 1);
    assert_eq!(tree.find_prefix(just_below), 4, "just below the total: last positive leaf");
    assert_eq!(tree.find_prefix(total), 4, "mass == total clamps to the last positive leaf");
    assert_eq!(tree.find_prefix(f64::INFINITY), 4);
    assert_eq!(tree.find_prefix(f64::NAN), 4);
    // Crossing the boundary after leaf 1 skips the zero leaf 2.
    assert_eq!(tree.find_prefix(0.3), 3);
    assert_eq!(tree.find_prefix(f64::from_bits(0.3f64.to_bits() - 1)), 1);

    // One positive leaf: every mass gives it.
    let mut single = SumTree::new(1000);
    single.set(617, 1e-300).unwrap();
    for mass in [0.0, 5e-301, 1e-300, 1.0, f64::NAN, -3.0] {
        assert_eq!(single.find_prefix(mass), 617);
    }

    // An empty tree has no positive leaf: the documented answer is 0.
    assert_eq!(SumTree::new(5).find_prefix(0.0), 0);
    assert_eq!(SumTree::new(0).find_prefix(1.0), 0);
}

#[test]
fn rounding_never_lands_on_a_zero_leaf() {
    // Masses a few ulps around every prefix sum and the total, on trees where the
    // subtractions of the descent round: the answer must be a positive leaf in range.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for capacity in [2, 3, 6, 17, 64, 200] {
        for _ in 0..20 {
            let mut tree = SumTree::new(capacity);
            let mut values = vec![0.0; capacity];
            for (i, v) in values.iter_mut().enumerate() {
                if rng.random_bool(0.5) {
                    *v = rng.random::<f64>() * 10f64.powi(rng.random_range(-12..12));
                    tree.set(i, *v).unwrap();
                }
            }
            if tree.total() == 0.0 {
                continue;
            }
            let sums = prefix_sums(&values);
            let tol = 1e-9 * tree.total();
            let mut masses = vec![tree.total(), tree.total() * (1.0 - f64::EPSILON)];
            masses.extend(sums.iter().copied());
            for m in masses {
                for ulps in -3i64..=3 {
                    let mass = f64::from_bits((m.to_bits() as i64 + ulps).max(0) as u64);
                    check_find_prefix(&tree, &values, &sums, mass, tol);
                }
            }
            // u just below 1 times the total may round up to the total.
            let u = f64::from_bits(1f64.to_bits() - 1);
            check_find_prefix(&tree, &values, &sums, u * tree.total(), tol);
        }
    }
}

/// Pearson's chi-square statistic of `counts` against `probs` (positive entries only).
fn chi_square(counts: &[u64], probs: &[f64], draws: u64) -> f64 {
    counts
        .iter()
        .zip(probs)
        .filter(|(_, &p)| p > 0.0)
        .map(|(&c, &p)| {
            let expected = p * draws as f64;
            (c as f64 - expected).powi(2) / expected
        })
        .sum()
}

#[test]
fn sampling_frequencies_follow_the_priorities() {
    // 10 leaves (padded to 16), two of them 0; 8 positive leaves -> 7 degrees of freedom.
    let priorities = [1.0, 2.0, 0.0, 3.0, 0.5, 4.0, 0.0, 2.5, 1.5, 0.25];
    let mut tree = SumTree::new(priorities.len());
    for (i, &p) in priorities.iter().enumerate() {
        tree.set(i, p).unwrap();
    }
    let total: f64 = priorities.iter().sum();
    let probs: Vec<f64> = priorities.iter().map(|p| p / total).collect();
    // The 0.9999 quantile of chi-square with 7 degrees of freedom is 29.9.
    let bound = 29.9;
    const DRAWS: u64 = 200_000;
    let mut rng = ChaCha8Rng::seed_from_u64(2016);

    // Plain uniform masses.
    let mut counts = vec![0u64; priorities.len()];
    for _ in 0..DRAWS {
        counts[tree.find_prefix(rng.random::<f64>() * tree.total())] += 1;
    }
    assert_eq!(counts[2] + counts[6], 0, "zero-priority leaves sampled: {counts:?}");
    let chi2 = chi_square(&counts, &probs, DRAWS);
    assert!(chi2 < bound, "uniform: chi-square {chi2} >= {bound}, counts {counts:?}");

    // Stratified masses, as in the paper: one draw per slice of the total.
    let mut counts = vec![0u64; priorities.len()];
    let slice = tree.total() / DRAWS as f64;
    for k in 0..DRAWS {
        let mass = (k as f64 + rng.random::<f64>()) * slice;
        counts[tree.find_prefix(mass)] += 1;
    }
    assert_eq!(counts[2] + counts[6], 0, "zero-priority leaves sampled: {counts:?}");
    let chi2 = chi_square(&counts, &probs, DRAWS);
    // Stratification pins each count to within about 1 of its expectation.
    assert!(chi2 < 1.0, "stratified: chi-square {chi2}, counts {counts:?}");
}

#[test]
fn errors_leave_the_trees_unchanged() {
    let mut sum = SumTree::new(5);
    let mut min = MinTree::new(5);
    for i in 0..5 {
        sum.set(i, i as f64).unwrap();
        min.set(i, 1.0 + i as f64).unwrap();
    }
    let sum_before = sum.tree.nodes.clone();
    let min_before = min.tree.nodes.clone();

    assert_eq!(sum.set(5, 1.0), Err(TreeError::IndexOutOfRange { index: 5, capacity: 5 }));
    assert_eq!(
        sum.set(usize::MAX, 1.0),
        Err(TreeError::IndexOutOfRange { index: usize::MAX, capacity: 5 })
    );
    for bad in [-1.0, -f64::MIN_POSITIVE, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            sum.set(2, bad),
            Err(TreeError::InvalidValue {
                index: 2,
                value: bad,
                capacity: 5,
                expected: "a finite, non-negative number"
            })
        );
    }
    let err = sum.set(3, f64::NAN).unwrap_err();
    assert!(
        matches!(err, TreeError::InvalidValue { index: 3, capacity: 5, value, .. } if value.is_nan())
    );
    assert_eq!(sum.tree.nodes, sum_before);

    assert_eq!(min.set(7, 0.0), Err(TreeError::IndexOutOfRange { index: 7, capacity: 5 }));
    let err = min.set(1, f64::NAN).unwrap_err();
    assert!(
        matches!(err, TreeError::InvalidValue { index: 1, capacity: 5, value, .. } if value.is_nan())
    );
    assert_eq!(min.tree.nodes, min_before);

    // Finite values whose sum overflows are refused and the old leaf comes back.
    let mut big = SumTree::new(3);
    big.set(0, f64::MAX).unwrap();
    big.set(2, 1.0).unwrap();
    let big_before = big.tree.nodes.clone();
    assert_eq!(
        big.set(2, f64::MAX),
        Err(TreeError::TotalOverflow { index: 2, value: f64::MAX, capacity: 3 })
    );
    assert_eq!(big.tree.nodes, big_before);
    assert_eq!(big.get(2), Some(1.0));

    // Capacity 0: nothing can be set, nothing panics.
    let mut empty = SumTree::new(0);
    assert_eq!(empty.set(0, 1.0), Err(TreeError::IndexOutOfRange { index: 0, capacity: 0 }));
    assert_eq!((empty.total(), empty.get(0), empty.values().len()), (0.0, None, 0));
    let mut empty = MinTree::new(0);
    assert!(empty.set(0, 1.0).is_err());
    assert_eq!(empty.min(), f64::INFINITY);

    // The messages name the index, the value and the capacity.
    let msg = SumTree::new(4).set(9, 1.0).unwrap_err().to_string();
    assert!(msg.contains('9') && msg.contains('4'), "{msg}");
    let msg = SumTree::new(4).set(1, -2.5).unwrap_err().to_string();
    assert!(msg.contains("-2.5") && msg.contains("leaf 1") && msg.contains('4'), "{msg}");
}

#[test]
fn accepted_edge_values() {
    let mut sum = SumTree::new(2);
    sum.set(0, -0.0).unwrap();
    assert!(sum.get(0).unwrap().is_sign_positive(), "-0.0 is stored as 0.0");
    sum.set(1, f64::MIN_POSITIVE).unwrap();
    assert_eq!(sum.find_prefix(0.0), 1);
    let mut min = MinTree::new(3);
    min.set(0, -7.0).unwrap();
    min.set(1, f64::NEG_INFINITY).unwrap();
    assert_eq!(min.min(), f64::NEG_INFINITY);
    min.set(1, f64::INFINITY).unwrap();
    assert_eq!(min.min(), -7.0);
}

#[test]
fn many_updates_do_not_drift() {
    // Each node is recomputed from its children, so a tree after a long history equals,
    // bit for bit, a tree built from its final leaves.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let capacity = 777;
    let mut tree = SumTree::new(capacity);
    for _ in 0..200_000 {
        tree.set(rng.random_range(0..capacity), rng.random::<f64>() * 1e6).unwrap();
    }
    let mut fresh = SumTree::new(capacity);
    for (i, &v) in tree.values().iter().enumerate() {
        fresh.set(i, v).unwrap();
    }
    assert_eq!(tree.tree.nodes, fresh.tree.nodes);
    assert_eq!(tree.total().to_bits(), fresh.total().to_bits());
}

#[test]
fn batch_gives_the_same_answers_as_single_calls() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for capacity in CAPACITIES {
        let mut tree = SumTree::new(capacity);
        for i in 0..capacity {
            if rng.random_bool(0.7) {
                tree.set(i, rng.random::<f64>() * 10f64.powi(rng.random_range(-6..6))).unwrap();
            }
        }
        let total = tree.total();
        for len in [0, 1, 15, 16, 17, 100] {
            let mut masses: Vec<f64> = (0..len).map(|_| rng.random::<f64>() * total).collect();
            // Edge masses too.
            for (k, edge) in [0.0, -1.0, total, f64::NAN, f64::INFINITY].into_iter().enumerate() {
                if k < len {
                    masses[k] = edge;
                }
            }
            let mut out = vec![usize::MAX; len];
            tree.find_prefix_batch(&masses, &mut out);
            let single: Vec<usize> = masses.iter().map(|&m| tree.find_prefix(m)).collect();
            assert_eq!(out, single, "capacity {capacity}, len {len}");
        }
    }
    // Different lengths: only the common prefix is written.
    let mut tree = SumTree::new(4);
    tree.set(3, 1.0).unwrap();
    let mut out = [9usize; 3];
    tree.find_prefix_batch(&[0.5, 0.5], &mut out);
    assert_eq!(out, [3, 3, 9]);
    let mut out = [9usize; 1];
    tree.find_prefix_batch(&[0.5, 0.5], &mut out);
    assert_eq!(out, [3]);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn absurd_capacity_panics_before_allocating() {
    let _ = SumTree::new(usize::MAX / 2 + 2);
}

#[test]
fn debug_is_short() {
    let tree = SumTree::new(1 << 12);
    assert_eq!(format!("{tree:?}"), "SumTree { capacity: 4096, total: 0.0, .. }");
    assert_eq!(format!("{:?}", MinTree::new(3)), "MinTree { capacity: 3, min: inf, .. }");
}
