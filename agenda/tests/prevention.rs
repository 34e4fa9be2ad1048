//! The prevention calendar: a table of birth dates and sexes with the reminders expected.

use mshub_agenda::{prevention_reminders, NaiveDate};
use mshub_directory::{BirthDate, Sex};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn keys(birth: &str, sex: Sex, done: &[(&str, &str)], today: &str) -> Vec<String> {
    let done: Vec<(String, NaiveDate)> = done.iter().map(|(k, v)| (k.to_string(), d(v))).collect();
    prevention_reminders(BirthDate::try_from(birth).unwrap(), sex, &done, d(today))
        .into_iter()
        .map(|r| format!("{}{}", r.key, if r.overdue { "!" } else { "" }))
        .collect()
}

/// Birth date, sex, what was done, today, the reminders expected (`!`: overdue).
type Case<'a> = (
    &'a str,
    Sex,
    &'a [(&'a str, &'a str)],
    &'a str,
    &'a [&'a str],
);

#[test]
fn french_prevention_calendar_table() {
    let table: &[Case] = &[
        // 20-year-old: nothing yet.
        ("2006-06-01", Sex::Female, &[], "2026-06-01", &[]),
        // 25 in a month: dTcaP coming, cervical screening coming.
        (
            "2001-07-01",
            Sex::Female,
            &[],
            "2026-06-01",
            &["dTcaP", "depistage-col-uterus"],
        ),
        // Same for a man: dTcaP only.
        ("2001-07-01", Sex::Male, &[], "2026-06-01", &["dTcaP"]),
        // 27, cervical test at 25: next at 28 (every 3 years before 30), not yet.
        (
            "1999-01-01",
            Sex::Female,
            &[
                ("dTcaP", "2024-01-10"),
                ("depistage-col-uterus", "2024-02-01"),
            ],
            "2026-06-01",
            &[],
        ),
        // 40, cervical test at 33: every 5 years from 30, due at 38 → overdue.
        (
            "1986-01-01",
            Sex::Female,
            &[
                ("dTcaP", "2011-03-01"),
                ("depistage-col-uterus", "2019-01-01"),
            ],
            "2026-06-01",
            &["depistage-col-uterus!"],
        ),
        // 52, nothing recorded: dTcaP of 45, breast, colorectal, cervical all overdue.
        (
            "1974-03-01",
            Sex::Female,
            &[],
            "2026-06-01",
            &[
                "dTcaP!",
                "depistage-col-uterus!",
                "depistage-colorectal!",
                "depistage-sein!",
            ],
        ),
        // 52 man, up to date on colorectal (2025), dTcaP at 45 done: nothing.
        (
            "1974-03-01",
            Sex::Male,
            &[
                ("dTcaP", "2019-04-01"),
                ("depistage-colorectal", "2025-05-01"),
            ],
            "2026-06-01",
            &[],
        ),
        // 70 woman: flu yearly from 65 (last 2025-10) due 2026-10 → not within 90 days in June.
        (
            "1956-01-01",
            Sex::Female,
            &[
                ("grippe", "2025-10-15"),
                ("dTcaP", "2021-02-01"),
                ("depistage-sein", "2025-01-01"),
                ("depistage-colorectal", "2025-01-01"),
            ],
            "2026-06-01",
            &[],
        ),
        // The same in September: flu due.
        (
            "1956-01-01",
            Sex::Female,
            &[
                ("grippe", "2025-10-15"),
                ("dTcaP", "2021-02-01"),
                ("depistage-sein", "2025-01-01"),
                ("depistage-colorectal", "2025-01-01"),
            ],
            "2026-09-01",
            &["grippe"],
        ),
        // 80 man, dTcaP at 65 only: the 75 booster overdue; screenings over (after 74).
        (
            "1946-01-01",
            Sex::Male,
            &[("dTcaP", "2011-01-10"), ("grippe", "2025-11-01")],
            "2026-06-01",
            &["dTcaP!"],
        ),
    ];
    for (birth, sex, done, today, expected) in table {
        let mut got = keys(birth, *sex, done, today);
        got.sort();
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(
            got, expected,
            "born {birth} {sex:?} on {today} with {done:?}"
        );
    }
}
