//! `mshub account import ROSTER.csv`: spaces created from the insurer's roster.
//!
//! The file is read as a stream, line by line, and written many accounts per batch. Its first
//! line names the columns, in any order, separated by `;` or `,` (whichever the header
//! uses); a field may be quoted with `"` (`""` inside for a quote):
//!
//! | column | also accepted | content |
//! |---|---|---|
//! | `ins` | | 15 characters, key checked |
//! | `nom` | `family_name` | family name |
//! | `prenom` | `prénom`, `given_name` | given name(s) |
//! | `date_naissance` | `birth_date` | `AAAA-MM-JJ` or `JJ/MM/AAAA` |
//! | `sexe` | `sex` | `F`, `M` or `I` |
//! | `email` | `contact` | optional: where to send the notice by e-mail |
//!
//! Each created (pending) space gets a notice: a PDF letter `DEPARTMENT/INS.pdf` in
//! `--letters DIR` and, when the
//! line has a contact address in the trust space, an e-mail queued for it. The report lists
//! the lines refused, with their number and why.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

use mshub_directory::lifecycle::IMPORT_BATCH;
use mshub_directory::{
    Account, AccountKind, Address, BirthDate, DomainRole, Ins, RosterOutcome, RosterPatient, Sex,
};

use crate::hub::Hub;
use crate::letter;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub lines: u64,
    pub created: u64,
    pub unchanged: u64,
    /// (line number, reason)
    pub refused: Vec<(u64, String)>,
    pub letters: u64,
    pub emails: u64,
    /// Contact addresses the hub cannot write to (outside the trust space).
    pub emails_not_sent: u64,
}

struct Columns {
    ins: usize,
    family: usize,
    given: usize,
    birth: usize,
    sex: usize,
    contact: Option<usize>,
    separator: char,
}

fn normalise_header(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .to_lowercase()
        .replace('é', "e")
        .replace([' ', '-'], "_")
}

impl Columns {
    fn from_header(line: &str) -> anyhow::Result<Self> {
        let separator = if line.contains(';') { ';' } else { ',' };
        let names: Vec<String> = split(line, separator)
            .iter()
            .map(|n| normalise_header(n))
            .collect();
        let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
        let need = |wanted: &[&str]| {
            find(wanted).with_context(|| {
                format!(
                    "the header line has no column {:?} (columns: ins;nom;prenom;date_naissance;sexe[;email])",
                    wanted[0]
                )
            })
        };
        Ok(Self {
            ins: need(&["ins"])?,
            family: need(&["nom", "family_name"])?,
            given: need(&["prenom", "given_name"])?,
            birth: need(&["date_naissance", "birth_date"])?,
            sex: need(&["sexe", "sex"])?,
            contact: find(&["email", "contact", "courriel"]),
            separator,
        })
    }
}

/// Splits one CSV line; quoted fields may hold the separator and doubled quotes.
fn split(line: &str, separator: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            c if c == separator && !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn birth_date(text: &str) -> Result<BirthDate, String> {
    let t = text.trim();
    let iso = match t.split('/').collect::<Vec<_>>().as_slice() {
        [d, m, y] if d.len() == 2 && m.len() == 2 && y.len() == 4 => format!("{y}-{m}-{d}"),
        _ => t.to_string(),
    };
    BirthDate::try_from(iso.as_str())
        .map_err(|_| format!("bad birth date {t:?}: expected AAAA-MM-JJ or JJ/MM/AAAA"))
}

/// A line's patient and contact address, or why it is refused.
fn parse_line(columns: &Columns, line: &str) -> Result<(RosterPatient, Option<Address>), String> {
    let fields = split(line, columns.separator);
    let get = |i: usize| fields.get(i).map(|f| f.trim()).unwrap_or("");
    let max = [
        columns.ins,
        columns.family,
        columns.given,
        columns.birth,
        columns.sex,
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    if fields.len() <= max {
        return Err(format!(
            "{} fields where the header has at least {}",
            fields.len(),
            max + 1
        ));
    }
    let ins = Ins::try_from(get(columns.ins)).map_err(|e| e.to_string())?;
    let family_name = get(columns.family).to_string();
    let given_name = get(columns.given).to_string();
    if family_name.is_empty() || given_name.is_empty() {
        return Err("the family name and the given name are required".into());
    }
    let birth_date = birth_date(get(columns.birth))?;
    let sex = Sex::try_from(get(columns.sex)).map_err(|e| e.to_string())?;
    let contact = match columns.contact.map(get).filter(|c| !c.is_empty()) {
        Some(c) => Some(Address::try_from(c).map_err(|e| format!("contact address: {e}"))?),
        None => None,
    };
    Ok((
        RosterPatient {
            ins,
            given_name,
            family_name,
            birth_date,
            sex,
        },
        contact,
    ))
}

/// A number per INS, for the duplicate check of a whole file in little memory.
fn ins_number(ins: &Ins) -> u64 {
    let s = ins.as_str();
    let corsica = match &s[5..7] {
        "2A" => 1u64 << 60,
        "2B" => 2u64 << 60,
        _ => 0,
    };
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.parse::<u64>().unwrap_or(0) | corsica
}

/// Shows progress on standard error when it is a terminal.
struct Progress {
    shown: bool,
    total: u64,
    start: Instant,
    last: Instant,
}

impl Progress {
    fn new(total: u64) -> Self {
        Self {
            shown: std::io::stderr().is_terminal(),
            total,
            start: Instant::now(),
            last: Instant::now(),
        }
    }

    fn update(&mut self, read: u64, report: &ImportReport, force: bool) {
        if !self.shown || (!force && self.last.elapsed().as_millis() < 200) {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let pct = if self.total > 0 {
            read as f64 * 100.0 / self.total as f64
        } else {
            100.0
        };
        eprint!(
            "\r{pct:5.1} %  {} lignes, {} créés, {} inchangés, {} refusés  ({:.0} lignes/s)   ",
            report.lines,
            report.created,
            report.unchanged,
            report.refused.len(),
            report.lines as f64 / secs
        );
        if force {
            eprintln!();
        }
    }
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

pub struct Options<'a> {
    pub roster: &'a Path,
    pub letters: Option<&'a Path>,
    pub now: i64,
}

pub fn import(hub: &Hub, opts: Options<'_>) -> anyhow::Result<ImportReport> {
    let file = std::fs::File::open(opts.roster)
        .with_context(|| format!("cannot read the roster {}", opts.roster.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(dir) = opts.letters {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the letters directory {}", dir.display()))?;
    }
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut lines = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file,
            read: read.clone(),
        },
    )
    .lines();
    let header = match lines.next() {
        Some(h) => h.context("reading the roster")?,
        None => bail!("the roster {} is empty", opts.roster.display()),
    };
    let columns = Columns::from_header(&header)?;
    let notices = Notices::new(hub, opts.letters)?;
    let mut report = ImportReport::default();
    let mut progress = Progress::new(total);
    let mut seen: HashSet<u64> = HashSet::new();
    let mut batch: Vec<(u64, RosterPatient, Option<Address>)> = Vec::with_capacity(IMPORT_BATCH);
    let mut number = 1u64;
    for line in lines {
        number += 1;
        let line = line.with_context(|| format!("reading line {number} of the roster"))?;
        if line.trim().is_empty() {
            continue;
        }
        report.lines += 1;
        match parse_line(&columns, &line) {
            Err(reason) => report.refused.push((number, reason)),
            Ok((patient, _)) if !seen.insert(ins_number(&patient.ins)) => report.refused.push((
                number,
                format!(
                    "INS {} appears earlier in the file (duplicate)",
                    patient.ins
                ),
            )),
            Ok((patient, contact)) => batch.push((number, patient, contact)),
        }
        if batch.len() >= IMPORT_BATCH {
            write_batch(hub, &notices, &mut batch, opts.now, &mut report)?;
            progress.update(
                read.load(std::sync::atomic::Ordering::Relaxed),
                &report,
                false,
            );
        }
    }
    write_batch(hub, &notices, &mut batch, opts.now, &mut report)?;
    progress.update(total, &report, true);
    Ok(report)
}

fn write_batch(
    hub: &Hub,
    notices: &Notices,
    batch: &mut Vec<(u64, RosterPatient, Option<Address>)>,
    now: i64,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let patients: Vec<RosterPatient> = batch.iter().map(|(_, p, _)| p.clone()).collect();
    let outcomes = hub
        .directory
        .import_patients(&patients, now, "operator")
        .context("writing the accounts")?;
    for ((number, _, contact), outcome) in batch.drain(..).zip(outcomes) {
        match outcome {
            RosterOutcome::Created {
                account,
                code,
                opposition_deadline,
            } => {
                report.created += 1;
                let notice = letter::Notice {
                    account: &account,
                    code: &code,
                    deadline: opposition_deadline,
                    url: &notices.url,
                };
                if let Some(dir) = &notices.letters {
                    letter::write_letter(dir, &notice)?;
                    report.letters += 1;
                }
                if let Some(to) = contact {
                    if notices.send_email(hub, &notice, &to)? {
                        report.emails += 1;
                    } else {
                        report.emails_not_sent += 1;
                    }
                }
            }
            RosterOutcome::Unchanged => report.unchanged += 1,
            RosterOutcome::Refused(reason) => report.refused.push((number, reason)),
        }
    }
    Ok(())
}

/// Where notices go.
struct Notices {
    letters: Option<PathBuf>,
    url: String,
    from: Address,
    queue: mshub_mta::queue::Queue,
}

impl Notices {
    fn new(hub: &Hub, letters: Option<&Path>) -> anyhow::Result<Self> {
        let url = hub.config.public_address();
        Ok(Self {
            letters: letters.map(Path::to_path_buf),
            url,
            from: Address::try_from(format!("ne-pas-repondre@{}", hub.config.hub_domain).as_str())?,
            queue: mshub_mta::queue::Queue::open(hub.store.clone())?,
        })
    }

    /// Queues the notice by e-mail when `to` is in the trust space (the queue runner of the
    /// hub delivers it); `false` when the hub cannot write there.
    fn send_email(
        &self,
        hub: &Hub,
        notice: &letter::Notice<'_>,
        to: &Address,
    ) -> anyhow::Result<bool> {
        let role = hub.directory.domain(&to.domain())?.map(|d| d.role);
        if !matches!(role, Some(DomainRole::Trusted { .. })) {
            return Ok(false);
        }
        let message = letter::email(notice, &self.from, to);
        self.queue.enqueue(
            Some(&self.from),
            None,
            false,
            vec![(to.clone(), Default::default())],
            &message,
        )?;
        Ok(true)
    }
}

/// Prints the report: the counts, then every refused line.
pub fn print_report(report: &ImportReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} lines: {} created (pending), {} unchanged, {} refused; {} letters, {} e-mails queued{}",
        report.lines,
        report.created,
        report.unchanged,
        report.refused.len(),
        report.letters,
        report.emails,
        if report.emails_not_sent > 0 {
            format!(
                ", {} contact addresses outside the trust space (letter only)",
                report.emails_not_sent
            )
        } else {
            String::new()
        }
    )?;
    for (line, reason) in &report.refused {
        writeln!(out, "line {line}: refused: {reason}")?;
    }
    Ok(())
}

/// The patient's names, for the letter.
pub fn names(account: &Account) -> (String, String) {
    match &account.kind {
        AccountKind::Patient {
            given_name,
            family_name,
            ..
        } => (given_name.clone(), family_name.clone()),
        other => (String::new(), other.display_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_on_the_header_separator_with_quotes() {
        assert_eq!(split("a;\"b;c\";\"d\"\"e\"", ';'), ["a", "b;c", "d\"e"]);
        assert_eq!(split("a,b,,c", ','), ["a", "b", "", "c"]);
    }

    #[test]
    fn columns_by_french_or_english_name_in_any_order() {
        let c = Columns::from_header("\u{feff}Sexe;INS;Prénom;Nom;Date_naissance;Email").unwrap();
        assert_eq!((c.sex, c.ins, c.given, c.family, c.birth), (0, 1, 2, 3, 4));
        assert_eq!(c.contact, Some(5));
        assert!(Columns::from_header("ins,nom,prenom,sexe").is_err());
    }

    #[test]
    fn dates_in_both_forms() {
        assert_eq!(birth_date("12/05/1984").unwrap().to_string(), "1984-05-12");
        assert_eq!(birth_date("1984-05-12").unwrap().to_string(), "1984-05-12");
        assert!(birth_date("31/02/1984").is_err());
    }

    #[test]
    fn corsican_ins_do_not_collide_with_mainland_ones() {
        let a = Ins::try_from("185052A00412356").unwrap();
        let b = Ins::try_from("284057511204339").unwrap();
        assert_ne!(ins_number(&a), ins_number(&b));
    }
}
