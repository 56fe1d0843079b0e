//! Linear algebra for the tests, written out so that no linear-algebra crate is needed:
//! the cyclic Jacobi eigen-decomposition of a symmetric matrix (Golub and Van Loan,
//! "Matrix Computations", section 8.5) and the cosines of the principal angles between two
//! subspaces (Bjorck and Golub 1973: the singular values of `Qa^T Qb`).

#![allow(dead_code)]

/// Eigenvalues and eigenvectors (columns of the returned row-major `n x n` matrix) of the
/// symmetric row-major matrix `a`.
pub fn jacobi_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q].powi(2))
            .sum();
        let total: f64 = a.iter().map(|x| x * x).sum();
        if off <= 1e-24 * total {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A <- J^T A J on rows/columns p and q.
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// An orthonormal basis of the span of `cols` (modified Gram-Schmidt).
pub fn orthonormalize(cols: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut q: Vec<Vec<f64>> = Vec::new();
    for c in cols {
        let mut v = c.clone();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(norm > 1e-9, "columns are linearly dependent");
        q.push(v.into_iter().map(|x| x / norm).collect());
    }
    q
}

/// The cosines of the principal angles between span(`a`) and span(`b`) (same count of
/// columns), largest first.
pub fn principal_cosines(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<f64> {
    let (qa, qb) = (orthonormalize(a), orthonormalize(b));
    let k = qa.len();
    let m: Vec<f64> = (0..k)
        .flat_map(|i| (0..k).map(move |j| (i, j)))
        .map(|(i, j)| qa[i].iter().zip(&qb[j]).map(|(x, y)| x * y).sum())
        .collect();
    // M^T M, whose eigenvalues are the squared singular values of M.
    let mut mtm = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            mtm[i * k + j] = (0..k).map(|r| m[r * k + i] * m[r * k + j]).sum();
        }
    }
    let (vals, _) = jacobi_eigen(&mtm, k);
    let mut s: Vec<f64> = vals.into_iter().map(|x| x.max(0.0).sqrt()).collect();
    s.sort_by(|a, b| b.total_cmp(a));
    s
}

#[test]
fn jacobi_diagonalises_a_known_matrix() {
    // [[2, 1], [1, 2]] has eigenvalues 1 and 3.
    let (mut vals, v) = jacobi_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
    vals.sort_by(f64::total_cmp);
    assert!((vals[0] - 1.0).abs() < 1e-12 && (vals[1] - 3.0).abs() < 1e-12);
    assert!((v[0].abs() - 0.5f64.sqrt()).abs() < 1e-12);
    // A subspace and a rotated basis of it: all cosines 1; orthogonal planes: 0.
    let a = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
    let b = vec![vec![1.0, 1.0, 0.0], vec![1.0, -2.0, 0.0]];
    assert!(principal_cosines(&a, &b).iter().all(|c| (c - 1.0).abs() < 1e-12));
    let c = vec![vec![0.0, 0.0, 1.0], vec![1.0, 0.0, 0.0]];
    let cos = principal_cosines(&a, &c);
    assert!((cos[0] - 1.0).abs() < 1e-12 && cos[1].abs() < 1e-12);
}
