//! Measurements pushed by apps: the validation table, scope, sealing, order.

mod common;

use common::*;
use mshub_catalogue::*;

fn m(kind: &str, value: f64, value2: Option<f64>, unit: &str, at: i64) -> NewMeasurement {
    NewMeasurement {
        kind: kind.into(),
        value,
        value2,
        unit: unit.into(),
        at,
        device: None,
    }
}

const NOW: i64 = 1_790_000_000;

#[test]
fn validation_table() {
    let ok = [
        m("weight", 72.4, None, "kg", NOW),
        m("weight", 0.5, None, "KG", NOW),
        m("weight", 500.0, None, "kg", NOW),
        m("blood-glucose", 5.4, None, "mmol/L", NOW),
        m("blood_glucose", 0.95, None, "g/L", NOW),
        m("blood-glucose", 95.0, None, "mg/dL", NOW),
        m("blood-pressure", 120.0, Some(80.0), "mmHg", NOW),
        m("heart-rate", 62.0, None, "bpm", NOW),
        m("steps", 0.0, None, "steps", NOW),
        m("steps", 200_000.0, None, "steps", NOW),
        m("weight", 70.0, None, "kg", NOW + 300),
        m("weight", 70.0, None, "kg", -2_208_988_800),
    ];
    for case in ok {
        case.check(NOW).unwrap_or_else(|e| panic!("{case:?}: {e}"));
    }
    let refused = [
        (
            m("weight", 70.0, None, "lb", NOW),
            "unit \"lb\" is not accepted for weight",
        ),
        (
            m("weight", 0.4, None, "kg", NOW),
            "outside the plausible range 0.5–500",
        ),
        (m("weight", 501.0, None, "kg", NOW), "outside"),
        (m("weight", f64::NAN, None, "kg", NOW), "finite"),
        (
            m("weight", 70.0, Some(1.0), "kg", NOW),
            "value2 is only for blood-pressure",
        ),
        (
            m("blood-glucose", 5.0, None, "mmHg", NOW),
            "not accepted for blood-glucose",
        ),
        (
            m("blood-glucose", 0.4, None, "mmol/L", NOW),
            "0.5–50 mmol/L",
        ),
        (m("blood-glucose", 51.0, None, "mmol/L", NOW), "0.5–50"),
        (m("blood-glucose", 10.0, None, "g/L", NOW), "55.51 mmol/L"),
        (
            m("blood-pressure", 120.0, None, "mmHg", NOW),
            "value2 (diastolic)",
        ),
        (
            m("blood-pressure", 80.0, Some(120.0), "mmHg", NOW),
            "above diastolic",
        ),
        (
            m("blood-pressure", 310.0, Some(80.0), "mmHg", NOW),
            "systolic pressure 310",
        ),
        (
            m("blood-pressure", 120.0, Some(10.0), "mmHg", NOW),
            "diastolic pressure 10",
        ),
        (m("heart-rate", 19.0, None, "bpm", NOW), "heart rate"),
        (m("heart-rate", 301.0, None, "bpm", NOW), "heart rate"),
        (m("steps", -1.0, None, "steps", NOW), "steps"),
        (m("steps", 200_001.0, None, "steps", NOW), "steps"),
        (m("steps", 10.5, None, "steps", NOW), "whole number"),
        (
            m("temperature", 37.0, None, "C", NOW),
            "kind \"temperature\" is unknown",
        ),
        (m("weight", 70.0, None, "kg", NOW + 301), "in the future"),
        (m("weight", 70.0, None, "kg", -2_208_988_801), "before 1900"),
    ];
    for (case, expected) in refused {
        let err = case.check(NOW).unwrap_err();
        assert!(
            matches!(err, CatalogueError::InvalidMeasurement(_)),
            "{err}"
        );
        assert_eq!(err.oauth_error(), "invalid_request");
        assert!(err.to_string().contains(expected), "{case:?}: {err}");
    }
    let mut long = m("weight", 70.0, None, "kg", NOW);
    long.device = Some("x".repeat(101));
    assert!(long
        .check(NOW)
        .unwrap_err()
        .to_string()
        .contains("100 characters"));
    long.device = Some("x".repeat(100));
    long.check(NOW).unwrap();
    long.device = Some("bad\u{7}".into());
    assert!(long.check(NOW).is_err());
}

#[test]
fn glucose_keeps_the_given_unit_and_mmol_per_litre() {
    let c = m("blood-glucose", 1.26, None, "g/l", NOW)
        .check(NOW)
        .unwrap();
    assert_eq!(c.unit, "g/L");
    assert_eq!(c.value, 1.26);
    assert_eq!(c.mmol_per_l, Some(6.99));
}

#[test]
fn posted_json_is_understood_and_unknown_fields_refused() {
    let j = r#"{"kind":"blood-pressure","value":128,"value2":84,"unit":"mmHg","at":1790000000,"device":"Tensiomètre T1"}"#;
    let n: NewMeasurement = serde_json::from_str(j).unwrap();
    n.check(NOW).unwrap();
    assert!(serde_json::from_str::<NewMeasurement>(
        r#"{"kind":"weight","value":70,"unit":"kg","at":1,"patient":2}"#
    )
    .is_err());
}

fn grant(h: &Hub, app: &str, scopes: &[Scope]) -> AppGrant {
    let (verifier, challenge) = pkce('m');
    let redirect = "http://127.0.0.1/callback";
    let code = h
        .catalogue
        .authorize(h.camille.id, app, scopes, redirect, &challenge, now())
        .unwrap();
    let token = h
        .catalogue
        .exchange(app, &code, &verifier, redirect, now())
        .unwrap();
    h.catalogue
        .authenticate(&token.access_token, now())
        .unwrap()
}

#[test]
fn measurements_are_stored_sealed_by_time_and_audited() {
    let h = hub();
    let g = grant(&h, "balance-gluco", &[Scope::MeasurementsWrite]);
    let t = now();
    let mut later = m("weight", 71.0, None, "kg", t - 60);
    later.device = Some("Balance Equilibre B2".into());
    let stored = h.catalogue.add_measurement(&g, later).unwrap();
    assert_eq!(stored.app_id, "balance-gluco");
    h.catalogue
        .add_measurement(&g, m("blood-glucose", 0.98, None, "g/L", t - 3600))
        .unwrap();
    let all = h.catalogue.measurements(h.camille.id).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].kind, MeasurementKind::BloodGlucose);
    assert_eq!(all[1].device.as_deref(), Some("Balance Equilibre B2"));
    let audited: Vec<_> = h
        .catalogue
        .activity(h.camille.id, Some("balance-gluco"))
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "app.measurement")
        .collect();
    assert_eq!(audited.len(), 2);
    assert_eq!(audited[0].event.actor, "app:balance-gluco");
    // Sealed: the device name is nowhere in clear.
    fn walk(dir: &std::path::Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p, needle)
            } else {
                std::fs::read(&p)
                    .unwrap()
                    .windows(needle.len())
                    .any(|w| w == needle)
            }
        })
    }
    assert!(!walk(h.store.dir(), b"Balance Equilibre B2"));
}

#[test]
fn measurements_need_the_write_scope() {
    let h = hub();
    let g = grant(&h, "souffle-libre", &[Scope::MeasurementsRead]);
    let err = h
        .catalogue
        .add_measurement(&g, m("heart-rate", 70.0, None, "bpm", now()))
        .unwrap_err();
    assert!(matches!(err, CatalogueError::InsufficientScope(_)), "{err}");
    assert_eq!(err.oauth_error(), "insufficient_scope");
    assert!(h.catalogue.measurements(h.camille.id).unwrap().is_empty());
}
