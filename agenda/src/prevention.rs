//! Prevention reminders (calendrier des vaccinations, dépistages organisés): which vaccine
//! boosters and organised screenings a patient is due for, from the birth date and sex of the
//! INS identity traits and what the patient has recorded as done. The calendar itself is data:
//! `data/prevention.toml`, compiled in.

use chrono::{Datelike, Days, NaiveDate};
use serde::Deserialize;

use mshub_directory::{BirthDate, Sex};

const PREVENTION_TOML: &str = include_str!("../data/prevention.toml");

/// A reminder is returned when due within this many days (or overdue).
pub const LOOKAHEAD_DAYS: u64 = 90;
/// A booster done this long before its age still counts for it.
const EARLY_TOLERANCE_YEARS: u32 = 2;

#[derive(Debug, Clone, Deserialize)]
struct Calendar {
    rule: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
struct Rule {
    key: String,
    label: String,
    sex: String,
    #[serde(default)]
    ages: Vec<u32>,
    #[serde(default)]
    then_every_years: Option<u32>,
    #[serde(default)]
    interval: Vec<Interval>,
}

#[derive(Debug, Clone, Deserialize)]
struct Interval {
    from_age: u32,
    to_age: u32,
    every_years: u32,
}

/// Something the patient is due for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreventionReminder {
    /// The rule's key in `prevention.toml` (e.g. `dTcaP`, `depistage-sein`).
    pub key: String,
    /// French label for the patient.
    pub label: String,
    pub due: NaiveDate,
    pub overdue: bool,
}

fn calendar() -> Calendar {
    // The file is part of the crate; a test parses it, so this cannot fail in a release.
    toml::from_str(PREVENTION_TOML).unwrap_or(Calendar { rule: Vec::new() })
}

fn add_years(date: NaiveDate, years: u32) -> Option<NaiveDate> {
    let year = date.year() + i32::try_from(years).ok()?;
    // 29 February in a common year: the 28th.
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
}

fn sub_years(date: NaiveDate, years: u32) -> Option<NaiveDate> {
    let year = date.year() - i32::try_from(years).ok()?;
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
}

fn age_at(birth: NaiveDate, date: NaiveDate) -> i32 {
    let mut age = date.year() - birth.year();
    if (date.month(), date.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// The boosters and screenings due for a patient within [`LOOKAHEAD_DAYS`] of `today`, or
/// overdue. `done` lists what was recorded (name, date); a name matches a rule's key without
/// regard to case. A patient of unknown sex (`Sex::Unknown`) gets the rules of both sexes.
pub fn prevention_reminders(
    birth: BirthDate,
    sex: Sex,
    done: &[(String, NaiveDate)],
    today: NaiveDate,
) -> Vec<PreventionReminder> {
    let Some(born) = NaiveDate::from_ymd_opt(
        i32::from(birth.year),
        u32::from(birth.month),
        u32::from(birth.day),
    ) else {
        return Vec::new();
    };
    let horizon = today
        .checked_add_days(Days::new(LOOKAHEAD_DAYS))
        .unwrap_or(today);
    let mut out = Vec::new();
    for rule in calendar().rule {
        let applies = !matches!(
            (rule.sex.as_str(), sex),
            ("F", Sex::Male) | ("M", Sex::Female)
        );
        if !applies {
            continue;
        }
        let last = done
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(&rule.key))
            .map(|(_, d)| *d)
            .max();
        let due = if rule.interval.is_empty() {
            by_ages(&rule, born, last, today)
        } else {
            by_intervals(&rule, born, last, today)
        };
        if let Some(due) = due.filter(|d| *d <= horizon) {
            out.push(PreventionReminder {
                key: rule.key.clone(),
                label: rule.label.clone(),
                due,
                overdue: due < today,
            });
        }
    }
    out.sort_by(|a, b| (a.due, &a.key).cmp(&(b.due, &b.key)));
    out
}

/// Boosters at fixed ages, then every N years (dTcaP: 25, 45, 65, then every 10 years).
fn by_ages(
    rule: &Rule,
    born: NaiveDate,
    last: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let mut ages = rule.ages.clone();
    if let (Some(&final_age), Some(every)) = (ages.last(), rule.then_every_years) {
        let mut age = final_age + every.max(1);
        while age <= 120 {
            ages.push(age);
            age += every.max(1);
        }
    }
    let slots: Vec<NaiveDate> = ages.iter().filter_map(|&a| add_years(born, a)).collect();
    match last {
        // The next booster whose age the last one did not cover.
        Some(last) => slots
            .into_iter()
            .find(|slot| sub_years(*slot, EARLY_TOLERANCE_YEARS).is_some_and(|s| s > last)),
        // Nothing recorded: the latest booster that should have been done, else the first.
        None => slots
            .iter()
            .rev()
            .find(|slot| **slot <= today)
            .or(slots.first())
            .copied(),
    }
}

/// Screenings or vaccines every N years within age intervals (cervical: every 3 years from 25
/// to 29, every 5 years from 30 to 65).
fn by_intervals(
    rule: &Rule,
    born: NaiveDate,
    last: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let first = rule.interval.first()?;
    let max_age = rule.interval.iter().map(|i| i.to_age).max()?;
    let start = add_years(born, first.from_age)?;
    if age_at(born, today) > max_age as i32 {
        return None;
    }
    let due = match last {
        Some(last) => {
            let age = age_at(born, last);
            let every = rule
                .interval
                .iter()
                .find(|i| (i.from_age as i32..=i.to_age as i32).contains(&age))
                .unwrap_or(first)
                .every_years;
            add_years(last, every)?.max(start)
        }
        None => start,
    };
    (age_at(born, due) <= max_age as i32).then_some(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_file_parses_with_its_five_rules() {
        let cal: Calendar = toml::from_str(PREVENTION_TOML).unwrap();
        assert_eq!(cal.rule.len(), 5);
    }
}
