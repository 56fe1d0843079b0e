use super::*;

fn plateau(patience: u64, cooldown: u64) -> ReduceLROnPlateau {
    let config = PlateauConfig {
        lr: 1.0,
        factor: 0.5,
        patience,
        cooldown,
        threshold_mode: ThresholdMode::Abs,
        threshold: 0.0,
        ..PlateauConfig::default()
    };
    ReduceLROnPlateau::new(config).unwrap()
}

#[test]
fn reduces_after_patience_bad_steps() {
    let mut p = plateau(2, 0);
    assert_eq!(p.lr(), 1.0);
    // 1.0 improves on +inf; then three bad steps: the third exceeds patience 2.
    let lrs: Vec<f64> = [1.0, 1.0, 1.0, 1.0, 1.0].iter().map(|&m| p.step(m)).collect();
    assert_eq!(lrs, [1.0, 1.0, 1.0, 0.5, 0.5]);
    assert_eq!(p.best(), 1.0);
}

#[test]
fn cooldown_suppresses_bad_steps() {
    let mut p = plateau(1, 2);
    // step 0 improves; 1, 2 bad -> reduce at 2 (bad = 2 > 1), cooldown 2;
    // steps 3, 4 in cooldown (bad reset); 5, 6 bad -> reduce at 6.
    let metrics = [5.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0];
    let lrs: Vec<f64> = metrics.iter().map(|&m| p.step(m)).collect();
    assert_eq!(lrs, [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]);
}

#[test]
fn improvement_resets_the_count() {
    let mut p = plateau(1, 0);
    let metrics = [5.0, 6.0, 4.0, 6.0, 3.0, 6.0, 6.0];
    let lrs: Vec<f64> = metrics.iter().map(|&m| p.step(m)).collect();
    assert_eq!(lrs, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]);
}

#[test]
fn max_mode_relative_threshold_and_floors() {
    let config = PlateauConfig {
        lr: 1.0,
        mode: PlateauMode::Max,
        factor: 0.1,
        patience: 0,
        threshold: 0.1,
        min_lr: 0.05,
        ..PlateauConfig::default()
    };
    let mut p = ReduceLROnPlateau::new(config).unwrap();
    assert_eq!(p.step(10.0), 1.0); // improves on -inf
    assert_eq!(p.step(10.5), 0.1); // not > 11: bad 1 > patience 0
    assert_eq!(p.step(12.0), 0.1); // improves
    assert_eq!(p.step(f64::NAN), 0.05); // NaN is bad; clamped at min_lr
    assert_eq!(p.step(0.0), 0.05); // already at min_lr: no change
}

#[test]
fn eps_stops_tiny_reductions() {
    let config =
        PlateauConfig { lr: 1e-7, factor: 0.5, patience: 0, eps: 1e-7, ..Default::default() };
    let mut p = ReduceLROnPlateau::new(config).unwrap();
    p.step(1.0);
    assert_eq!(p.step(1.0), 1e-7); // a cut of 5e-8 is below eps
}

#[test]
fn invalid_config_names_the_field() {
    let field = |c: PlateauConfig| match ReduceLROnPlateau::new(c) {
        Err(ScheduleError::InvalidParameter { field, .. }) => field,
        other => panic!("expected an error, got {other:?}"),
    };
    let d = PlateauConfig::default();
    assert_eq!(field(PlateauConfig { factor: 1.0, ..d }), "factor");
    assert_eq!(field(PlateauConfig { factor: -0.1, ..d }), "factor");
    assert_eq!(field(PlateauConfig { factor: f64::NAN, ..d }), "factor");
    assert_eq!(field(PlateauConfig { lr: -1.0, ..d }), "lr");
    assert_eq!(field(PlateauConfig { min_lr: f64::INFINITY, ..d }), "min_lr");
    assert_eq!(field(PlateauConfig { threshold: -1.0, ..d }), "threshold");
    assert_eq!(field(PlateauConfig { eps: -1.0, ..d }), "eps");
    assert!(matches!(
        "minimum".parse::<PlateauMode>(),
        Err(ScheduleError::UnknownVariant { field: "mode", .. })
    ));
    assert_eq!("abs".parse::<ThresholdMode>(), Ok(ThresholdMode::Abs));
    assert!("absolute".parse::<ThresholdMode>().is_err());
}
