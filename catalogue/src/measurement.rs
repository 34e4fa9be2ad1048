//! Measurements pushed by apps with `measurements:write`: checked (unit, physiological range,
//! time) and sealed to the patient's key at rest.
//!
//! Tree `catalogue-measurement`: patient ‖ time (order-preserving) ‖ id → sealed JSON
//! [`Measurement`], so that a scan of a patient's prefix returns them by time.

use serde::{Deserialize, Serialize};

use mshub_store::{AccountId, AuditEvent, Batch, Tree};

use crate::{audit_detail, corrupt, AppGrant, Catalogue, CatalogueError, Result, Scope};

const MEASUREMENTS: Tree = Tree("catalogue-measurement");
/// 1900-01-01T00:00:00Z.
pub const EARLIEST: i64 = -2_208_988_800;
/// Clock difference tolerated with the app's device, seconds.
pub const FUTURE_SKEW: i64 = 300;
/// Longest device name.
pub const MAX_DEVICE: usize = 100;
/// g/L → mmol/L for glucose (molar mass 180.16 g/mol).
const GLUCOSE_MMOL_PER_G: f64 = 1000.0 / 180.16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeasurementKind {
    /// Poids, kg.
    Weight,
    /// Glycémie, mmol/L or g/L (or mg/dL).
    BloodGlucose,
    /// Tension artérielle, systolic/diastolic mmHg.
    BloodPressure,
    /// Fréquence cardiaque, beats per minute.
    HeartRate,
    /// Pas, per day.
    Steps,
}

impl MeasurementKind {
    pub const ALL: [MeasurementKind; 5] = [
        MeasurementKind::Weight,
        MeasurementKind::BloodGlucose,
        MeasurementKind::BloodPressure,
        MeasurementKind::HeartRate,
        MeasurementKind::Steps,
    ];

    /// The name apps send (`"kind": "blood-glucose"`).
    pub fn name(self) -> &'static str {
        match self {
            MeasurementKind::Weight => "weight",
            MeasurementKind::BloodGlucose => "blood-glucose",
            MeasurementKind::BloodPressure => "blood-pressure",
            MeasurementKind::HeartRate => "heart-rate",
            MeasurementKind::Steps => "steps",
        }
    }

    pub fn label_fr(self) -> &'static str {
        match self {
            MeasurementKind::Weight => "Poids",
            MeasurementKind::BloodGlucose => "Glycémie",
            MeasurementKind::BloodPressure => "Tension artérielle",
            MeasurementKind::HeartRate => "Fréquence cardiaque",
            MeasurementKind::Steps => "Nombre de pas",
        }
    }

    /// The units accepted, canonical spelling first.
    pub fn units(self) -> &'static [&'static str] {
        match self {
            MeasurementKind::Weight => &["kg"],
            MeasurementKind::BloodGlucose => &["mmol/L", "g/L", "mg/dL"],
            MeasurementKind::BloodPressure => &["mmHg"],
            MeasurementKind::HeartRate => &["bpm"],
            MeasurementKind::Steps => &["steps"],
        }
    }
}

impl std::str::FromStr for MeasurementKind {
    type Err = CatalogueError;
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.replace('_', "-");
        MeasurementKind::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| {
                CatalogueError::InvalidMeasurement(format!(
                    "kind {:?} is unknown (weight, blood-glucose, blood-pressure, heart-rate, steps)",
                    s.chars().take(40).collect::<String>()
                ))
            })
    }
}

/// What an app posts (JSON).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewMeasurement {
    /// `weight`, `blood-glucose`, `blood-pressure`, `heart-rate`, `steps`.
    pub kind: String,
    /// The value; systolic pressure for `blood-pressure`.
    pub value: f64,
    /// Diastolic pressure for `blood-pressure`; absent otherwise.
    #[serde(default)]
    pub value2: Option<f64>,
    pub unit: String,
    /// When it was measured, Unix seconds.
    pub at: i64,
    /// The device, e.g. "Balance connectée X200".
    #[serde(default)]
    pub device: Option<String>,
}

/// A stored measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub id: u64,
    pub kind: MeasurementKind,
    pub value: f64,
    pub value2: Option<f64>,
    /// The unit the app gave, in its canonical spelling.
    pub unit: String,
    /// Blood glucose in mmol/L whatever the unit given (None for other kinds).
    pub mmol_per_l: Option<f64>,
    pub at: i64,
    pub device: Option<String>,
    pub app_id: String,
    pub recorded_at: i64,
}

/// A measurement that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub kind: MeasurementKind,
    pub value: f64,
    pub value2: Option<f64>,
    pub unit: &'static str,
    pub mmol_per_l: Option<f64>,
    pub at: i64,
    pub device: Option<String>,
}

fn invalid<T>(m: String) -> Result<T> {
    Err(CatalogueError::InvalidMeasurement(m))
}

fn in_range(what: &str, v: f64, min: f64, max: f64, unit: &str) -> Result<()> {
    if !(min..=max).contains(&v) {
        return invalid(format!(
            "{what} {v} {unit} is outside the plausible range {min}–{max} {unit}"
        ));
    }
    Ok(())
}

impl NewMeasurement {
    /// Every check, with a message an app developer can act on.
    pub fn check(&self, now: i64) -> Result<Checked> {
        let kind: MeasurementKind = self.kind.parse()?;
        let unit = kind
            .units()
            .iter()
            .copied()
            .find(|u| u.eq_ignore_ascii_case(self.unit.trim()))
            .ok_or_else(|| {
                CatalogueError::InvalidMeasurement(format!(
                    "unit {:?} is not accepted for {} (use {})",
                    self.unit.chars().take(20).collect::<String>(),
                    kind.name(),
                    kind.units().join(", ")
                ))
            })?;
        let v = self.value;
        if !v.is_finite() || self.value2.is_some_and(|v2| !v2.is_finite()) {
            return invalid("value is not a finite number".into());
        }
        if kind != MeasurementKind::BloodPressure && self.value2.is_some() {
            return invalid(format!(
                "value2 is only for blood-pressure, not {}",
                kind.name()
            ));
        }
        let mut mmol_per_l = None;
        match kind {
            MeasurementKind::Weight => in_range("weight", v, 0.5, 500.0, unit)?,
            MeasurementKind::BloodGlucose => {
                let mmol = match unit {
                    "g/L" => v * GLUCOSE_MMOL_PER_G,
                    "mg/dL" => v * GLUCOSE_MMOL_PER_G / 100.0,
                    _ => v,
                };
                if !(0.5..=50.0).contains(&mmol) {
                    return invalid(format!(
                        "blood glucose {v} {unit} ({mmol:.2} mmol/L) is outside the plausible \
                         range 0.5–50 mmol/L"
                    ));
                }
                mmol_per_l = Some((mmol * 100.0).round() / 100.0);
            }
            MeasurementKind::BloodPressure => {
                let Some(diastolic) = self.value2 else {
                    return invalid(
                        "blood-pressure needs value (systolic) and value2 (diastolic)".into(),
                    );
                };
                in_range("systolic pressure", v, 40.0, 300.0, unit)?;
                in_range("diastolic pressure", diastolic, 20.0, 200.0, unit)?;
                if diastolic >= v {
                    return invalid(format!(
                        "systolic pressure {v} must be above diastolic pressure {diastolic}"
                    ));
                }
            }
            MeasurementKind::HeartRate => in_range("heart rate", v, 20.0, 300.0, unit)?,
            MeasurementKind::Steps => {
                in_range("steps", v, 0.0, 200_000.0, "per day")?;
                if v.fract() != 0.0 {
                    return invalid(format!("steps {v} is not a whole number"));
                }
            }
        }
        if self.at < EARLIEST {
            return invalid(format!("at {} is before 1900", self.at));
        }
        if self.at > now + FUTURE_SKEW {
            return invalid(format!(
                "at {} is in the future (the hub's time is {now})",
                self.at
            ));
        }
        let device = match self.device.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) if d.chars().count() > MAX_DEVICE => {
                return invalid(format!("device is longer than {MAX_DEVICE} characters"))
            }
            Some(d) if d.chars().any(char::is_control) => {
                return invalid("device contains control characters".into())
            }
            Some(d) => Some(d.to_string()),
        };
        Ok(Checked {
            kind,
            value: v,
            value2: self.value2,
            unit,
            mmol_per_l,
            at: self.at,
            device,
        })
    }
}

/// Order-preserving key of a signed time.
fn time_key(at: i64) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

impl Catalogue {
    /// Adds a measurement for the grant's patient: needs `measurements:write`; checked; sealed
    /// to the patient; audited `app.measurement` (actor `app:<id>`).
    pub fn add_measurement(&self, grant: &AppGrant, m: NewMeasurement) -> Result<Measurement> {
        self.add_measurement_at(grant, m, mshub_store::now())
    }

    /// [`Catalogue::add_measurement`] with the hub's time given (tests).
    pub fn add_measurement_at(
        &self,
        grant: &AppGrant,
        m: NewMeasurement,
        now: i64,
    ) -> Result<Measurement> {
        grant.require(&Scope::MeasurementsWrite)?;
        let checked = m.check(now)?;
        let store = self.store();
        let id = store.next_counter("catalogue-measurement", 1)?;
        let measurement = Measurement {
            id,
            kind: checked.kind,
            value: checked.value,
            value2: checked.value2,
            unit: checked.unit.to_string(),
            mmol_per_l: checked.mmol_per_l,
            at: checked.at,
            device: checked.device,
            app_id: grant.app_id.clone(),
            recorded_at: now,
        };
        let plain = serde_json::to_vec(&measurement).map_err(|e| corrupt("measurement", e))?;
        let mut key = grant.patient.to_key().to_vec();
        key.extend_from_slice(&time_key(measurement.at));
        key.extend_from_slice(&id.to_be_bytes());
        let mut batch = Batch::new();
        batch.check(MEASUREMENTS, key.clone(), None);
        batch.put(MEASUREMENTS, key, store.seal(grant.patient, &plain)?);
        let _ = store.kv().commit(&batch)?;
        self.audit(
            AuditEvent::new(
                grant.actor(),
                "app.measurement",
                format!("measurement:{id} {}", measurement.kind.name()),
            )
            .with_detail(audit_detail(grant.patient, &grant.app_id)),
        )?;
        Ok(measurement)
    }

    /// The patient's measurements, oldest first.
    pub fn measurements(&self, patient: AccountId) -> Result<Vec<Measurement>> {
        let store = self.store();
        store
            .kv()
            .scan(MEASUREMENTS, &patient.to_key(), None, None)?
            .into_iter()
            .map(|(_, sealed)| {
                let plain = store.open_sealed(patient, &sealed)?;
                serde_json::from_slice(&plain).map_err(|e| corrupt("measurement", e))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_like_times() {
        let times = [EARLIEST, -1, 0, 1, 1_700_000_000];
        for w in times.windows(2) {
            assert!(time_key(w[0]) < time_key(w[1]));
        }
    }
}
