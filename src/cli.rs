//! Command-line parsing and dispatch.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use mshub_directory::{
    AccountKind, Address, BirthDate, Domain, DomainEntry, DomainRole, Ins, Profession, Route, Rpps,
    Sex, TlsPolicy,
};

use mshub_mta::queue::RecipientState;

use crate::config::{self, Config};
use crate::hub::Hub;
use crate::{demo, serve};

/// The actor recorded in the audit chain for command-line changes.
const OPERATOR: &str = "operator";

#[derive(Parser)]
#[command(name = "mshub", version, about = "Secure health-messaging hub")]
struct Cli {
    /// Configuration file (default: ./mshub.toml if it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process.
    Serve,
    /// Run the hub with a self-signed certificate and the demo accounts.
    Demo {
        /// Demo directory (configuration, master key, certificate, data).
        #[arg(long, value_name = "DIR", default_value = "demo-data")]
        data: PathBuf,
    },
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
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum AccountCommand {
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
enum KindArgs {
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
struct PatientArgs {
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
struct ProfessionalArgs {
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
enum DomainCommand {
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
enum QueueCommand {
    /// List queued messages and the state of each recipient.
    List,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every link of the audit chain.
    Verify,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented configuration with every default.
    Example,
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Demo { data } => {
            let config_path = demo::prepare(&data)?;
            let config = Config::load(&config_path)?;
            init_logging(&config);
            let hub = Hub::open(config)?;
            demo::seed(&hub.directory)?;
            demo::print_banner(&hub, &config_path)?;
            runtime()?.block_on(serve::run(hub))
        }
        Command::Serve => {
            let config = load_config(cli.config.as_deref())?;
            init_logging(&config);
            let hub = Hub::open(config)?;
            runtime()?.block_on(serve::run(hub))
        }
        Command::Account(cmd) => account(Hub::open(load_config(cli.config.as_deref())?)?, cmd),
        Command::Domain(cmd) => domain(Hub::open(load_config(cli.config.as_deref())?)?, cmd),
        Command::Queue(QueueCommand::List) => {
            let hub = Hub::open(load_config(cli.config.as_deref())?)?;
            let queue = mshub_mta::queue::Queue::open(hub.store.clone())?;
            let entries = queue.list()?;
            if entries.is_empty() {
                println!("the queue is empty");
            }
            for e in entries {
                println!(
                    "Q{}  from <{}>  {} bytes  {} attempts  next in {} s",
                    e.id,
                    e.from.as_ref().map(|a| a.to_string()).unwrap_or_default(),
                    e.size,
                    e.attempts,
                    (e.next_attempt - mshub_store::now()).max(0)
                );
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
                    println!("    <{}>  {state}", r.address);
                }
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Verify) => {
            let hub = Hub::open(load_config(cli.config.as_deref())?)?;
            let report = hub.store.verify_audit()?;
            println!(
                "audit chain intact: {} records, head {}",
                report.records, report.head
            );
            Ok(())
        }
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None if Path::new("mshub.toml").exists() => Config::load(Path::new("mshub.toml")),
        None => Ok(Config::default()),
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

fn account(hub: Hub, cmd: AccountCommand) -> anyhow::Result<()> {
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
            let password = password_stdin.then(read_password).transpose()?;
            let account = dir.add_account(
                Address::try_from(address.as_str())?,
                kind,
                password.as_deref(),
                OPERATOR,
            )?;
            println!("created {} ({})", account.address, account.kind.label());
        }
        AccountCommand::List => {
            for a in dir.accounts()? {
                println!(
                    "{:<45} {:<13} {}{}",
                    a.address,
                    a.kind.label(),
                    a.kind.display_name(),
                    if a.disabled { "  [disabled]" } else { "" }
                );
            }
        }
        AccountCommand::Passwd { address } => {
            let password = read_password()?;
            dir.set_password(&Address::try_from(address.as_str())?, &password, OPERATOR)?;
            println!("password changed for {address}");
        }
        AccountCommand::Disable { address } => {
            dir.set_disabled(&Address::try_from(address.as_str())?, true, OPERATOR)?;
            println!("disabled {address}");
        }
        AccountCommand::Enable { address } => {
            dir.set_disabled(&Address::try_from(address.as_str())?, false, OPERATOR)?;
            println!("enabled {address}");
        }
        AccountCommand::AppPassword { address, label } => {
            let (app, clear) =
                dir.add_app_password(&Address::try_from(address.as_str())?, &label, OPERATOR)?;
            println!(
                "application password {} ({}) for {address}:",
                app.id, app.label
            );
            println!("{clear}");
        }
    }
    Ok(())
}

fn domain(hub: Hub, cmd: DomainCommand) -> anyhow::Result<()> {
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
            println!("trusted {domain}");
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
            println!("{domain} is now local");
        }
        DomainCommand::List => {
            for d in dir.domains()? {
                match d.role {
                    DomainRole::Local => println!("{:<40} local", d.domain.as_str()),
                    DomainRole::Trusted { route, tls } => println!(
                        "{:<40} trusted  route {}  tls {}",
                        d.domain.as_str(),
                        route.map_or("MX".to_string(), |r| r.to_string()),
                        match tls {
                            TlsPolicy::Required => "required",
                            TlsPolicy::MutualTls => "mutual-tls",
                        }
                    ),
                }
            }
        }
    }
    Ok(())
}
