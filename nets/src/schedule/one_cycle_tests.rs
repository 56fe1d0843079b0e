use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1e-300)
}

#[test]
fn two_phase_endpoints() {
    let s = OneCycleLR::new(OneCycleConfig::new(1.0, 100)).unwrap();
    assert!(close(s.value(0), 1.0 / 25.0));
    assert_eq!(s.momentum(0), Some(0.95));
    // Peak at pct_start*T - 1 = 29.
    assert!(close(s.value(29), 1.0));
    assert!(close(s.momentum(29).unwrap(), 0.85));
    assert!(s.value(28) < 1.0 && s.value(30) < 1.0);
    assert!(close(s.value(99), 1.0 / 25.0 / 1e4));
    assert!(close(s.momentum(99).unwrap(), 0.95));
    // Past the cycle: held at the end values.
    assert_eq!(s.value(100), s.value(99));
    assert_eq!(s.value(u64::MAX), s.value(99));
    assert_eq!(s.total_steps(), 100);
}

#[test]
fn three_phase_linear_shape() {
    let mut c = OneCycleConfig::new(2.0, 50);
    c.three_phase = true;
    c.anneal_strategy = AnnealStrategy::Linear;
    c.pct_start = 0.2; // phases end at 9, 18, 49
    let s = OneCycleLR::new(c).unwrap();
    assert!(close(s.value(9), 2.0));
    assert!(close(s.value(18), 2.0 / 25.0));
    assert!(close(s.momentum(18).unwrap(), 0.95));
    assert!(close(s.momentum(30).unwrap(), 0.95));
    // Linear: halfway through the warm-up (pct = 4.5/9 at step 4.5) is the midpoint.
    let mid = (s.value(4) + s.value(5)) / 2.0;
    assert!(close(mid, (2.0 + 0.08) / 2.0));
    assert!(close(s.value(49), 0.08 / 1e4));
}

#[test]
fn no_momentum_when_not_cycling() {
    let mut c = OneCycleConfig::new(0.1, 10);
    c.cycle_momentum = false;
    let s = OneCycleLR::new(c).unwrap();
    assert_eq!(s.momentum(3), None);
}

#[test]
fn degenerate_phases_stay_finite() {
    // pct_start*T == 1: the warm-up ends at step 0 with zero length (torch divides by 0).
    let mut c = OneCycleConfig::new(1.0, 10);
    c.pct_start = 0.1;
    let s = OneCycleLR::new(c).unwrap();
    assert_eq!(s.value(0), 1.0);
    // total_steps 1: a single step at min_lr.
    let s = OneCycleLR::new(OneCycleConfig::new(1.0, 1)).unwrap();
    assert!(close(s.value(0), 1.0 / 25.0 / 1e4));
    for t in 0..12 {
        assert!(s.value(t).is_finite() && s.momentum(t).unwrap().is_finite());
    }
}

#[test]
fn invalid_hyperparameters_name_the_field() {
    let field = |c: OneCycleConfig| match OneCycleLR::new(c) {
        Err(ScheduleError::InvalidParameter { field, .. }) => field,
        other => panic!("expected an error, got {other:?}"),
    };
    let base = OneCycleConfig::new(1.0, 100);
    assert_eq!(field(OneCycleConfig { total_steps: 0, ..base }), "total_steps");
    assert_eq!(field(OneCycleConfig { pct_start: 0.0, ..base }), "pct_start");
    assert_eq!(field(OneCycleConfig { pct_start: 1.0, ..base }), "pct_start");
    assert_eq!(field(OneCycleConfig { pct_start: f64::NAN, ..base }), "pct_start");
    assert_eq!(field(OneCycleConfig { max_lr: -1.0, ..base }), "max_lr");
    assert_eq!(field(OneCycleConfig { max_lr: f64::INFINITY, ..base }), "max_lr");
    assert_eq!(field(OneCycleConfig { div_factor: 0.0, ..base }), "div_factor");
    assert_eq!(field(OneCycleConfig { final_div_factor: -1.0, ..base }), "final_div_factor");
    assert_eq!(field(OneCycleConfig { base_momentum: -0.1, ..base }), "base_momentum");
    let e = "cosine".parse::<AnnealStrategy>().unwrap_err();
    assert!(e.to_string().contains("anneal_strategy"), "{e}");
    assert_eq!("linear".parse::<AnnealStrategy>(), Ok(AnnealStrategy::Linear));
}
