//! The operator's commands (accounts, trust space, queue, audit), run against an open hub and
//! writing to any output: from the command line when the hub is stopped, or inside the running
//! hub when the command line forwards them through the control socket.

use std::io::{BufRead, Write};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

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
    /// Create an application password for a mail client; printed once.
    AppPassword {
        address: String,
        #[arg(long, default_value = "mail client")]
        label: String,
    },
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
                writeln!(
                    out,
                    "{:<45} {:<13} {}{}",
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
    }
    Ok(())
}

fn domain(hub: &Hub, cmd: DomainCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = &hub.directory;
    match cmd {
        DomainCommand::Trust { domain, route, tls } => {
            let domain = Domain::try_from(domain.as_str())?;
            if dir.is_local(&domain)? {
                bail!("{domain} is a local domain of this hub, not a peer");
            }
            let role = DomainRole::Trusted {
                route: route.as_deref().map(Route::try_from).transpose()?,
                tls: TlsPolicy::try_from(tls.as_str())?,
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
                    DomainRole::Trusted { route, tls } => writeln!(
                        out,
                        "{:<40} trusted  route {}  tls {}",
                        d.domain.as_str(),
                        route.map_or("MX".to_string(), |r| r.to_string()),
                        match tls {
                            TlsPolicy::Required => "required",
                            TlsPolicy::MutualTls => "mutual-tls",
                        }
                    ),
                }?
            }
        }
    }
    Ok(())
}
