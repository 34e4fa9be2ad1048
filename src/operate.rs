//! The operator's commands (accounts, trust space, queue, audit, catalogue), run against an open hub and
//! writing to any output: from the command line when the hub is stopped, or inside the running
//! hub when the command line forwards them through the control socket.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use mshub_catalogue::{Catalogue, Scope};
use mshub_directory::{
    AccountKind, Address, BirthDate, Domain, DomainEntry, DomainRole, Ins, Profession, Route, Rpps,
    Sex, TlsPolicy,
};
use mshub_mta::queue::RecipientState;

use crate::hub::Hub;

/// The actor recorded in the audit chain for command-line changes.
const OPERATOR: &str = "operator";

#[derive(Subcommand)]
pub enum Operation {
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage the trust space.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// The outbound queue (mail waiting for peer operators).
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The signed catalogue of referenced health apps.
    #[command(subcommand)]
    Catalogue(CatalogueCommand),
    /// Back the store up into one file while the hub runs (a consistent copy, still sealed:
    /// useless without the master key), or check a backup file whole.
    Backup(BackupArgs),
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    /// The file to write (created, mode 0600; an existing file is not overwritten).
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,
    #[command(subcommand)]
    pub check: Option<BackupCheck>,
}

#[derive(Subcommand)]
pub enum BackupCheck {
    /// Check a backup file whole (its form and SHA-256) without restoring it.
    Verify { file: PathBuf },
}

impl Operation {
    /// Whether the operation reads a password from standard input.
    pub fn reads_stdin(&self) -> bool {
        matches!(
            self,
            Operation::Account(AccountCommand::Passwd { .. })
                | Operation::Account(AccountCommand::Add {
                    password_stdin: true,
                    ..
                })
        )
    }
}

impl Operation {
    /// The arguments to run this operation in the running hub, given this process's (`args`):
    /// the hub has its own working directory, so file arguments become absolute paths.
    pub fn forwarded_args(&self, args: Vec<String>) -> Vec<String> {
        match self {
            Operation::Catalogue(CatalogueCommand::Import { file, signature }) => {
                let abs = |p: &Path| {
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.to_path_buf())
                        .to_string_lossy()
                        .into_owned()
                };
                vec![
                    "catalogue".into(),
                    "import".into(),
                    abs(file),
                    abs(signature),
                ]
            }
            Operation::Account(AccountCommand::Import {
                roster,
                letters,
                clock,
            }) => {
                let abs = |p: &Path| {
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.to_path_buf())
                        .to_string_lossy()
                        .into_owned()
                };
                let mut out = vec!["account".into(), "import".into(), abs(roster)];
                if let Some(dir) = letters {
                    out.extend(["--letters".into(), abs(dir)]);
                }
                if let Some(now) = clock.now {
                    out.extend(["--now".into(), now.to_string()]);
                }
                out
            }
            Operation::Backup(BackupArgs { to: Some(file), .. }) => {
                let abs = std::path::absolute(file).unwrap_or_else(|_| file.clone());
                vec![
                    "backup".into(),
                    "--to".into(),
                    abs.to_string_lossy().into_owned(),
                ]
            }
            _ => args,
        }
    }
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account. Its password, if any, is read from standard input.
    Add {
        address: String,
        #[command(subcommand)]
        kind: KindArgs,
        /// Read the password from the first line of standard input.
        #[arg(long, global = true)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Set an account's password, read from the first line of standard input.
    Passwd { address: String },
    /// Disable an account: it can no longer log in (its mail is kept).
    Disable { address: String },
    /// Enable a disabled account.
    Enable { address: String },
    /// Change the members of an organisation mailbox: who may send as it, and who reads the
    /// documents it filed for patients.
    Members {
        organisation: String,
        /// Address of an account to add (repeatable).
        #[arg(long)]
        add: Vec<String>,
        /// Address of a member to remove (repeatable).
        #[arg(long)]
        remove: Vec<String>,
    },
    /// Create an application password for a mail client; printed once.
    AppPassword {
        address: String,
        #[arg(long, default_value = "mail client")]
        label: String,
    },
    /// Create pending patient spaces from the insurer's roster (CSV with a header line:
    /// ins;nom;prenom;date_naissance;sexe[;email], `;` or `,`). Idempotent; prints a report of
    /// the lines refused. Each created space gets a notice with its activation code.
    Import {
        roster: PathBuf,
        /// Write each notice as a PDF letter `<department>/<INS>.pdf` in this directory.
        #[arg(long, value_name = "DIR")]
        letters: Option<PathBuf>,
        #[command(flatten)]
        clock: Clock,
    },
    /// Record a patient's opposition: the pending space is never opened (INS or address).
    Oppose {
        patient: String,
        #[command(flatten)]
        clock: Clock,
    },
    /// Close a patient's space; its content is destroyed after [accounts] retention_days.
    Close {
        patient: String,
        #[command(flatten)]
        clock: Clock,
    },
    /// Reopen a closed space during its retention delay.
    Reopen {
        patient: String,
        #[command(flatten)]
        clock: Clock,
    },
    /// Do now what the running hub does every minute: open the pending spaces whose
    /// opposition period is over, destroy the closed ones whose retention delay is over.
    Tick {
        #[command(flatten)]
        clock: Clock,
    },
}

/// The time the lifecycle commands act at.
#[derive(Args, Clone, Copy)]
pub struct Clock {
    /// Act as if it were this Unix time (seconds): for tests and for replaying a schedule.
    #[arg(long, hide = true, value_name = "UNIX_SECONDS")]
    now: Option<i64>,
}

impl Clock {
    fn now(self) -> i64 {
        self.now.unwrap_or_else(mshub_store::now)
    }
}

#[derive(Subcommand)]
pub enum KindArgs {
    /// A patient: address <INS>@patient.<hub domain>.
    Patient(PatientArgs),
    /// A health professional.
    Professional(ProfessionalArgs),
    /// An organisation mailbox (e.g. a laboratory's system).
    Organisation {
        #[arg(long)]
        name: String,
        /// Address of a member allowed to send as the organisation (repeatable).
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// The mailbox of a catalogue application.
    Application {
        #[arg(long)]
        name: String,
    },
}

#[derive(Args)]
pub struct PatientArgs {
    #[arg(long)]
    ins: String,
    #[arg(long)]
    given_name: String,
    #[arg(long)]
    family_name: String,
    /// YYYY-MM-DD
    #[arg(long)]
    birth_date: String,
    /// F, M or I
    #[arg(long)]
    sex: String,
}

#[derive(Args)]
pub struct ProfessionalArgs {
    #[arg(long)]
    rpps: String,
    #[arg(long)]
    given_name: String,
    #[arg(long)]
    family_name: String,
    /// physician, pharmacist, dentist, midwife, nurse, physiotherapist,
    /// radiology-technician, lab-technician (or the TRE_G15 code)
    #[arg(long)]
    profession: String,
    #[arg(long, default_value = "")]
    specialty: String,
    /// Where they practise (shown to patients who search the directory).
    #[arg(long, default_value = "")]
    city: String,
}

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Trust a peer operator's domain: mail from it is accepted, mail to it relayed.
    Trust {
        domain: String,
        /// host:port of the peer's SMTP server (default: its MX).
        #[arg(long)]
        route: Option<String>,
        /// required, or mutual-tls (the peer must present a client certificate).
        #[arg(long, default_value = "required")]
        tls: String,
        /// A name of the peer's client certificate that may also send for this domain
        /// (repeatable). Without it, a client certificate must name the domain itself.
        #[arg(long = "certificate-name")]
        certificate_names: Vec<String>,
    },
    /// Host a domain here (an organisation's domain).
    Local { domain: String },
    /// List the trust space.
    List,
}

#[derive(Subcommand)]
pub enum QueueCommand {
    /// List queued messages and the state of each recipient.
    List,
}

#[derive(Subcommand)]
pub enum CatalogueCommand {
    /// Verify a catalogue file's detached OpenPGP signature against the referencing
    /// authorities of the configuration ([catalogue] authorities) and make it the current
    /// catalogue. Refuses anything unsigned, modified, signed by another key, or expired.
    Import {
        /// The catalogue (TOML).
        file: PathBuf,
        /// Its detached signature (armored or binary).
        signature: PathBuf,
    },
    /// List the apps of the current catalogue.
    List,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every link of the audit chain.
    Verify,
}

pub fn run(
    hub: &Hub,
    op: Operation,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match op {
        Operation::Account(cmd) => account(hub, cmd, stdin, out),
        Operation::Domain(cmd) => domain(hub, cmd, out),
        Operation::Queue(QueueCommand::List) => queue(hub, out),
        Operation::Catalogue(cmd) => catalogue(hub, cmd, out),
        Operation::Backup(BackupArgs { to: Some(file), .. }) => backup(hub, &file, out),
        Operation::Backup(BackupArgs {
            check: Some(BackupCheck::Verify { file }),
            ..
        }) => verify_backup(&file, out),
        Operation::Backup(_) => {
            bail!("say where: mshub backup --to FILE, or mshub backup verify FILE")
        }
        Operation::Audit(AuditCommand::Verify) => {
            let report = hub.store.verify_audit()?;
            writeln!(
                out,
                "audit chain intact: {} records, head {}",
                report.records, report.head
            )?;
            Ok(())
        }
    }
}

/// Reads and concatenates the configured authorities' certificates.
pub fn authorities(hub: &Hub) -> anyhow::Result<Vec<u8>> {
    let paths = &hub.config.catalogue.authorities;
    if paths.is_empty() {
        bail!(
            "no referencing authority is configured: list its OpenPGP certificate in \
             [catalogue] authorities"
        );
    }
    let mut all = Vec::new();
    for path in paths {
        all.extend(std::fs::read(path).with_context(|| {
            format!("cannot read the authority certificate {}", path.display())
        })?);
        all.push(b'\n');
    }
    Ok(all)
}

fn catalogue(hub: &Hub, cmd: CatalogueCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let catalogue = Catalogue::new(hub.store.clone(), hub.directory.clone());
    match cmd {
        CatalogueCommand::Import { file, signature } => {
            let authorities = authorities(hub)?;
            let data =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let sig = std::fs::read(&signature)
                .with_context(|| format!("cannot read {}", signature.display()))?;
            let count = catalogue
                .import(&data, &sig, &authorities, OPERATOR)
                .with_context(|| format!("catalogue {} refused", file.display()))?;
            if let Some(current) = catalogue.current()? {
                writeln!(
                    out,
                    "imported {count} apps from {}: issued {}, valid until {}, signed by {}",
                    file.display(),
                    current.file.issued,
                    current.file.valid_until,
                    current.file.signed_by
                )?;
            }
        }
        CatalogueCommand::List => {
            let apps = catalogue.apps()?;
            if apps.is_empty() {
                writeln!(out, "no catalogue imported")?;
            }
            for app in apps {
                writeln!(
                    out,
                    "{:<20} {:<32} {:<24} {}",
                    app.id,
                    app.name,
                    app.category,
                    Scope::join(&app.scopes)
                )?;
            }
        }
    }
    Ok(())
}

fn queue(hub: &Hub, out: &mut dyn Write) -> anyhow::Result<()> {
    let queue = mshub_mta::queue::Queue::open(hub.store.clone())?;
    let entries = queue.list()?;
    if entries.is_empty() {
        writeln!(out, "the queue is empty")?;
    }
    for e in entries {
        writeln!(
            out,
            "Q{}  from <{}>  {} bytes  {} attempts  next in {} s",
            e.id,
            e.from.as_ref().map(|a| a.to_string()).unwrap_or_default(),
            e.size,
            e.attempts,
            (e.next_attempt - mshub_store::now()).max(0)
        )?;
        for r in &e.recipients {
            let state = match &r.state {
                RecipientState::Pending { last_error } => format!(
                    "pending{}",
                    last_error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
                RecipientState::Delivered { reply } => format!("delivered: {reply}"),
                RecipientState::Failed { reply } => format!("failed: {reply}"),
            };
            writeln!(out, "    <{}>  {state}", r.address)?;
        }
    }
    Ok(())
}

fn read_password(stdin: &mut dyn BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

fn account(
    hub: &Hub,
    cmd: AccountCommand,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let dir = &hub.directory;
    match cmd {
        AccountCommand::Add {
            address,
            kind,
            password_stdin,
        } => {
            let kind = match kind {
                KindArgs::Patient(p) => AccountKind::Patient {
                    ins: Ins::try_from(p.ins.as_str())?,
                    given_name: p.given_name,
                    family_name: p.family_name,
                    birth_date: BirthDate::try_from(p.birth_date.as_str())?,
                    sex: Sex::try_from(p.sex.as_str())?,
                },
                KindArgs::Professional(p) => AccountKind::Professional {
                    rpps: Rpps::try_from(p.rpps.as_str())?,
                    given_name: p.given_name,
                    family_name: p.family_name,
                    profession: Profession::try_from(p.profession.as_str())?,
                    specialty: p.specialty,
                    city: p.city,
                },
                KindArgs::Organisation { name, members } => AccountKind::Organisation {
                    name,
                    members: members
                        .iter()
                        .map(|m| Address::try_from(m.as_str()))
                        .collect::<Result<_, _>>()?,
                },
                KindArgs::Application { name } => AccountKind::Application { name },
            };
            let password = password_stdin.then(|| read_password(stdin)).transpose()?;
            let account = dir.add_account(
                Address::try_from(address.as_str())?,
                kind,
                password.as_deref(),
                OPERATOR,
            )?;
            writeln!(
                out,
                "created {} ({})",
                account.address,
                account.kind.label()
            )?;
        }
        AccountCommand::List => {
            for a in dir.accounts()? {
                let state = match a.lifecycle {
                    mshub_directory::Lifecycle::Active => String::new(),
                    ref other => format!("  [{}]", other.label()),
                };
                writeln!(
                    out,
                    "{:<45} {:<13} {}{}{state}",
                    a.address,
                    a.kind.label(),
                    a.kind.display_name(),
                    if a.disabled { "  [disabled]" } else { "" }
                )?;
            }
        }
        AccountCommand::Passwd { address } => {
            let password = read_password(stdin)?;
            dir.set_password(&Address::try_from(address.as_str())?, &password, OPERATOR)?;
            writeln!(out, "password changed for {address}")?;
        }
        AccountCommand::Disable { address } => {
            dir.set_disabled(&Address::try_from(address.as_str())?, true, OPERATOR)?;
            writeln!(out, "disabled {address}")?;
        }
        AccountCommand::Enable { address } => {
            dir.set_disabled(&Address::try_from(address.as_str())?, false, OPERATOR)?;
            writeln!(out, "enabled {address}")?;
        }
        AccountCommand::Members {
            organisation,
            add,
            remove,
        } => {
            let organisation = Address::try_from(organisation.as_str())?;
            for (addresses, present) in [(add, true), (remove, false)] {
                for member in addresses {
                    let member = Address::try_from(member.as_str())?;
                    dir.set_member(&organisation, &member, present, OPERATOR)?;
                    let verb = if present { "added" } else { "removed" };
                    writeln!(out, "{verb} {member} ({organisation})")?;
                }
            }
        }
        AccountCommand::AppPassword { address, label } => {
            let (app, clear) =
                dir.add_app_password(&Address::try_from(address.as_str())?, &label, OPERATOR)?;
            writeln!(
                out,
                "application password {} ({}) for {address}:",
                app.id, app.label
            )?;
            writeln!(out, "{clear}")?;
        }
        AccountCommand::Import {
            roster,
            letters,
            clock,
        } => {
            let report = crate::roster::import(
                hub,
                crate::roster::Options {
                    roster: &roster,
                    letters: letters.as_deref(),
                    now: clock.now(),
                },
            )?;
            crate::roster::print_report(&report, out)?;
        }
        AccountCommand::Oppose { patient, clock } => {
            let a = dir.oppose(&patient_address(hub, &patient)?, clock.now(), OPERATOR)?;
            writeln!(out, "{} opposed: the space will never be opened", a.address)?;
        }
        AccountCommand::Close { patient, clock } => {
            let a = dir.close(&patient_address(hub, &patient)?, clock.now(), OPERATOR)?;
            if let mshub_directory::Lifecycle::Closed { destroy_after, .. } = a.lifecycle {
                writeln!(
                    out,
                    "{} closed: content destroyed after {} unless reopened",
                    a.address,
                    mshub_agenda::french::date(destroy_after)
                )?;
            }
        }
        AccountCommand::Reopen { patient, clock } => {
            let a = dir.reopen(&patient_address(hub, &patient)?, clock.now(), OPERATOR)?;
            writeln!(out, "{} reopened", a.address)?;
        }
        AccountCommand::Tick { clock } => {
            let mut opened = 0;
            let mut destroyed = 0;
            loop {
                let r = dir.tick(clock.now(), crate::lifecycle::TICK_LIMIT)?;
                if r.opened.is_empty() && r.destroyed.is_empty() {
                    break;
                }
                opened += r.opened.len();
                destroyed += r.destroyed.len();
            }
            writeln!(out, "{opened} spaces opened, {destroyed} destroyed")?;
        }
    }
    Ok(())
}

/// A patient given by INS or by address.
fn patient_address(hub: &Hub, patient: &str) -> anyhow::Result<Address> {
    Ok(match Ins::try_from(patient) {
        Ok(ins) => hub.directory.patient_address(&ins),
        Err(_) => Address::try_from(patient)?,
    })
}

fn domain(hub: &Hub, cmd: DomainCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = &hub.directory;
    match cmd {
        DomainCommand::Trust {
            domain,
            route,
            tls,
            certificate_names,
        } => {
            let domain = Domain::try_from(domain.as_str())?;
            if dir.is_local(&domain)? {
                bail!("{domain} is a local domain of this hub, not a peer");
            }
            let role = DomainRole::Trusted {
                route: route.as_deref().map(Route::try_from).transpose()?,
                tls: TlsPolicy::try_from(tls.as_str())?,
                certificate_names: certificate_names
                    .iter()
                    .map(|n| Domain::try_from(n.as_str()).map(|d| d.as_str().to_string()))
                    .collect::<Result<_, _>>()?,
            };
            dir.set_domain(
                DomainEntry {
                    domain: domain.clone(),
                    role,
                },
                OPERATOR,
            )?;
            writeln!(out, "trusted {domain}")?;
        }
        DomainCommand::Local { domain } => {
            let domain = Domain::try_from(domain.as_str())?;
            dir.set_domain(
                DomainEntry {
                    domain: domain.clone(),
                    role: DomainRole::Local,
                },
                OPERATOR,
            )?;
            writeln!(out, "{domain} is now local")?;
        }
        DomainCommand::List => {
            for d in dir.domains()? {
                match d.role {
                    DomainRole::Local => writeln!(out, "{:<40} local", d.domain.as_str()),
                    DomainRole::Trusted {
                        route,
                        tls,
                        certificate_names,
                    } => writeln!(
                        out,
                        "{:<40} trusted  route {}  tls {}{}",
                        d.domain.as_str(),
                        route.map_or("MX".to_string(), |r| r.to_string()),
                        match tls {
                            TlsPolicy::Required => "required",
                            TlsPolicy::MutualTls => "mutual-tls",
                        },
                        if certificate_names.is_empty() {
                            String::new()
                        } else {
                            format!("  certificate {}", certificate_names.join(", "))
                        }
                    ),
                }?
            }
        }
    }
    Ok(())
}

/// Writes a backup of the running hub's store to `file` (a new file, readable by its owner
/// only, fsync'd before it is reported).
fn backup(hub: &Hub, file: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create the backup file {}", file.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let report = match hub.store.backup(&mut w) {
        Ok(r) => r,
        Err(e) => {
            drop(w);
            let _ = std::fs::remove_file(file);
            return Err(e).context("backup failed, nothing kept");
        }
    };
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
        .with_context(|| format!("cannot write {}", file.display()))?;
    writeln!(
        out,
        "backup written to {}: {} records, {} blob files, {} bytes",
        file.display(),
        report.records,
        report.blob_files,
        report.bytes
    )?;
    if hub.config.blobs.backend == crate::config::BlobBackend::S3 {
        writeln!(
            out,
            "the sealed blobs above the inline size are in the S3 bucket, not in this file: \
             back the bucket up with its own tools"
        )?;
    }
    Ok(())
}

/// Checks a backup file whole; an error says what is wrong with it.
pub fn verify_backup(file: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let report = mshub_store::backup::verify(&mut std::io::BufReader::new(f))
        .with_context(|| format!("{} is not a usable backup", file.display()))?;
    writeln!(
        out,
        "backup {} is whole: {} records, {} blob files, {} bytes, SHA-256 matches",
        file.display(),
        report.records,
        report.blob_files,
        report.bytes
    )?;
    Ok(())
}
