//! The client commands of the `ams` binary (`ams pub`, `ams sub`, `ams tail`,
//! administration, …), over [`ams_client`].
//!
//! Connection settings come from flags, then `AMS_URL` / `AMS_TOKEN` /
//! `AMS_PROJECT`, then a profile ([`profile`]). Output is for people by
//! default and JSON with `--json` ([`output`]). Exit codes tell failures
//! apart ([`exit`]), and every error says what to do about it.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use ams_client::{Client, Error as ClientError, TailStart};
use ams_types::wire;
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};

#[macro_use]
pub mod output;
pub mod profile;

use output::{Format, short};

/// Exit codes of the client commands.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// Something else went wrong (bad input file, a stream error).
    pub const FAILURE: u8 = 1;
    /// A usage mistake (clap's own code for bad arguments).
    pub const USAGE: u8 = 2;
    /// The server could not be reached or did not answer in time.
    pub const UNREACHABLE: u8 = 3;
    /// The server refused the token (401) or the action (403).
    pub const DENIED: u8 = 4;
    /// The resource does not exist (404).
    pub const NOT_FOUND: u8 = 5;
    /// A conflict: it exists already, or the state does not allow it (409).
    pub const CONFLICT: u8 = 6;
    /// The server refused the request as invalid (400, 413).
    pub const INVALID: u8 = 7;
    /// The server failed (5xx).
    pub const SERVER: u8 = 8;
}

/// Where and as whom the client commands connect (each also settable by
/// environment variable or profile).
#[derive(Debug, Args, Clone)]
pub struct Connection {
    /// Server address [env: AMS_URL; profile: url; default: http://127.0.0.1:8080].
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Token (sent as x-api-key) [env: AMS_TOKEN; profile: token].
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Project [env: AMS_PROJECT; profile: project].
    #[arg(long, short = 'p', global = true)]
    pub project: Option<String>,
    /// Profile to read from the profiles file [env: AMS_PROFILE; default: default].
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Extra CA certificate (PEM) to trust [env: AMS_CA_FILE; profile: ca_file].
    #[arg(long, global = true)]
    pub ca_file: Option<PathBuf>,
    /// Print JSON instead of tables and lines.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Publish messages: DATA, each line of --file, or each line of standard input.
    Pub(PubArgs),
    /// Stream a subscription: print messages as they arrive and acknowledge them.
    Sub(SubArgs),
    /// Follow a topic (project admins): replay its last messages, then live ones.
    Tail(TailArgs),
    /// Pull messages once.
    Pull(PullArgs),
    /// Acknowledge messages by ack id.
    Ack(AckArgs),
    /// Move a subscription's committed offset (replay or skip).
    Seek(SeekArgs),
    /// Show a subscription's offsets.
    Offsets(NameArg),
    /// Projects: list, show, create, delete.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Topics of the project: list, show, create, delete.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Subscriptions of the project: list, show, create, delete.
    #[command(subcommand)]
    Subscriptions(SubscriptionsCommand),
    /// Users: list, show, create, delete.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Access lists of topics and subscriptions: show, set.
    #[command(subcommand)]
    Acl(AclCommand),
}

/// `ams pub`.
#[derive(Debug, Args)]
pub struct PubArgs {
    /// The topic.
    pub topic: String,
    /// One message; without it, messages are read one per line.
    pub data: Option<String>,
    /// Read messages from this file, one per line.
    #[arg(long, short = 'f', conflicts_with = "data")]
    pub file: Option<PathBuf>,
    /// An attribute for every message, as key=value (repeatable).
    #[arg(long = "attribute", short = 'a', value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
    /// The input is base64 already (sent as is); by default it is encoded.
    #[arg(long)]
    pub base64: bool,
    /// Messages per publish request.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
}

/// `ams sub`.
#[derive(Debug, Args)]
pub struct SubArgs {
    /// The subscription.
    pub subscription: String,
    /// Stop after this many messages.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// Most messages in flight (unacknowledged) at a time.
    #[arg(long, default_value_t = 100)]
    pub window: u32,
    /// Leave messages unacknowledged (they come again after the ack deadline).
    #[arg(long)]
    pub no_ack: bool,
}

/// `ams tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The topic.
    pub topic: String,
    /// Start at the last N messages.
    #[arg(long, conflicts_with_all = ["from", "time"])]
    pub last: Option<u64>,
    /// Start at this offset.
    #[arg(long, conflicts_with = "time")]
    pub from: Option<u64>,
    /// Start at the first message published at or after this RFC 3339 time.
    #[arg(long)]
    pub time: Option<String>,
    /// Stop after this many messages.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
}

/// `ams pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The subscription.
    pub subscription: String,
    /// Most messages to return.
    #[arg(long, short = 'm', default_value_t = 10)]
    pub max: u32,
    /// Acknowledge what was pulled.
    #[arg(long)]
    pub ack: bool,
    /// Wait (up to the server's long-poll limit) when nothing is there.
    #[arg(long)]
    pub wait: bool,
}

/// `ams ack`.
#[derive(Debug, Args)]
pub struct AckArgs {
    /// The subscription.
    pub subscription: String,
    /// Ack ids (`projects/P/subscriptions/S:OFFSET`, or just the offset).
    #[arg(required = true)]
    pub ack_ids: Vec<String>,
}

/// `ams seek`.
#[derive(Debug, Args)]
pub struct SeekArgs {
    /// The subscription.
    pub subscription: String,
    /// The offset to move to.
    #[arg(long, required_unless_present = "time", conflicts_with = "time")]
    pub offset: Option<i64>,
    /// Move to the first message published at or after this time
    /// (`2024-01-02T03:04:05.000Z`).
    #[arg(long)]
    pub time: Option<String>,
}

/// A resource name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// The name.
    pub name: String,
}

/// `ams projects …`.
#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List projects.
    List,
    /// Show a project (default: the connection's project).
    Show(OptionalName),
    /// Create a project.
    Create {
        /// The name.
        name: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a project with its topics and subscriptions.
    Delete(NameArg),
}

/// An optional resource name.
#[derive(Debug, Args)]
pub struct OptionalName {
    /// The name.
    pub name: Option<String>,
}

/// `ams topics …`.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List the project's topics.
    List,
    /// Show a topic.
    Show(NameArg),
    /// Create a topic.
    Create {
        /// The name.
        name: String,
        /// Attach this schema of the project.
        #[arg(long)]
        schema: Option<String>,
    },
    /// Delete a topic.
    Delete(NameArg),
}

/// `ams subscriptions …`.
#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// List the project's subscriptions.
    List,
    /// Show a subscription.
    Show(NameArg),
    /// Create a pull subscription.
    Create {
        /// The name.
        name: String,
        /// The topic it follows.
        #[arg(long, short = 't')]
        topic: String,
        /// Ack deadline in seconds.
        #[arg(long)]
        ack_deadline: Option<i64>,
    },
    /// Delete a subscription.
    Delete(NameArg),
}

/// `ams users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    List,
    /// Show a user.
    Show(NameArg),
    /// Create a user; prints its token.
    Create {
        /// The name.
        name: String,
        /// Make it a member of the connection's project with these roles
        /// (repeatable: project_admin, publisher, consumer).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Service-wide roles (repeatable: service_admin, metrics_viewer, …).
        #[arg(long = "service-role")]
        service_roles: Vec<String>,
        /// Contact address.
        #[arg(long)]
        email: Option<String>,
    },
    /// Delete a user.
    Delete(NameArg),
}

/// Which resource an ACL belongs to.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AclKind {
    /// A topic's publishers.
    Topic,
    /// A subscription's consumers.
    Subscription,
}

/// `ams acl …`.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Show who is on an access list.
    Show {
        /// topic or subscription.
        kind: AclKind,
        /// Its name.
        name: String,
    },
    /// Replace an access list (no users empties it).
    Set {
        /// topic or subscription.
        kind: AclKind,
        /// Its name.
        name: String,
        /// Project members to allow.
        users: Vec<String>,
    },
}

fn parse_attribute(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}

/// A failure with its exit code and a message that says what to do.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

type Outcome = Result<(), Failure>;

/// Resolved connection settings.
struct Session {
    client: Client,
    url: String,
    project: Option<String>,
    format: Format,
}

impl Session {
    fn project(&self) -> Result<&str, Failure> {
        self.project.as_deref().ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                "no project given: use --project, set AMS_PROJECT, or add `project` to your profile",
            )
        })
    }

    /// Turns a client error into a failure that says what to do.
    fn fail(&self, e: ClientError) -> Failure {
        match e {
            ClientError::Connection(why) => Failure::new(
                exit::UNREACHABLE,
                format!(
                    "cannot reach {}: {why}\n  is the server running? Set --url or AMS_URL to its address",
                    self.url
                ),
            ),
            ClientError::Timeout => Failure::new(
                exit::UNREACHABLE,
                format!(
                    "{} did not answer in time; try again or check the server",
                    self.url
                ),
            ),
            ClientError::Api { code, message, .. } => {
                let (exit_code, hint) = match code {
                    401 => (
                        exit::DENIED,
                        "\n  the token is missing or unknown: set --token or AMS_TOKEN",
                    ),
                    403 => (
                        exit::DENIED,
                        "\n  this token's user lacks the role or is not on the access list",
                    ),
                    404 => (exit::NOT_FOUND, ""),
                    409 => (exit::CONFLICT, ""),
                    400 | 413 => (exit::INVALID, ""),
                    c if c >= 500 => (exit::SERVER, "\n  the server failed; its log says why"),
                    _ => (exit::FAILURE, ""),
                };
                Failure::new(exit_code, format!("{message} ({code}){hint}"))
            }
            ClientError::Config(why) => Failure::new(exit::USAGE, why),
            other => Failure::new(exit::FAILURE, other.to_string()),
        }
    }
}

/// Runs a client command; prints errors to standard error.
pub async fn run(conn: Connection, command: ClientCommand) -> ExitCode {
    let outcome = match session(&conn) {
        Ok(session) => dispatch(&session, command).await,
        Err(f) => Err(f),
    };
    match outcome {
        Ok(()) => ExitCode::from(exit::OK),
        Err(f) => {
            eprintln!("ams: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn session(conn: &Connection) -> Result<Session, Failure> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let profile_name = conn.profile.clone().or_else(|| env("AMS_PROFILE"));
    let profile =
        profile::load(profile_name.as_deref()).map_err(|e| Failure::new(exit::USAGE, e))?;
    let url = conn
        .url
        .clone()
        .or_else(|| env("AMS_URL"))
        .or(profile.url)
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let token = conn
        .token
        .clone()
        .or_else(|| env("AMS_TOKEN"))
        .or(profile.token);
    let project = conn
        .project
        .clone()
        .or_else(|| env("AMS_PROJECT"))
        .or(profile.project);
    let ca_file = conn
        .ca_file
        .clone()
        .or_else(|| env("AMS_CA_FILE").map(PathBuf::from))
        .or(profile.ca_file);
    let mut builder = Client::builder(&url);
    if let Some(t) = token {
        builder = builder.token(t);
    }
    if let Some(ca) = ca_file {
        builder = builder.ca_file(ca);
    }
    let client = builder
        .build()
        .map_err(|e| Failure::new(exit::USAGE, format!("cannot use {url}: {e}")))?;
    Ok(Session {
        client,
        url,
        project,
        format: if conn.json {
            Format::Json
        } else {
            Format::Human
        },
    })
}

async fn dispatch(s: &Session, command: ClientCommand) -> Outcome {
    match command {
        ClientCommand::Pub(args) => publish(s, args).await,
        ClientCommand::Sub(args) => subscribe(s, args).await,
        ClientCommand::Tail(args) => tail(s, args).await,
        ClientCommand::Pull(args) => pull(s, args).await,
        ClientCommand::Ack(args) => ack(s, args).await,
        ClientCommand::Seek(args) => seek(s, args).await,
        ClientCommand::Offsets(NameArg { name }) => {
            let o = s
                .client
                .offsets(s.project()?, &name)
                .await
                .map_err(|e| s.fail(e))?;
            match s.format {
                Format::Json => output::json(&o),
                Format::Human => output::fields(&[
                    ("current", o.current.to_string()),
                    ("min", o.min.to_string()),
                    ("max", o.max.to_string()),
                ]),
            }
            Ok(())
        }
        ClientCommand::Projects(c) => projects(s, c).await,
        ClientCommand::Topics(c) => topics(s, c).await,
        ClientCommand::Subscriptions(c) => subscriptions(s, c).await,
        ClientCommand::Users(c) => users(s, c).await,
        ClientCommand::Acl(c) => acl(s, c).await,
    }
}

/// The messages of `ams pub`, read lazily so that large inputs stream.
fn inputs(args: &PubArgs) -> Result<Box<dyn Iterator<Item = std::io::Result<String>>>, Failure> {
    Ok(match (&args.data, &args.file) {
        (Some(d), _) => Box::new(std::iter::once(Ok(d.clone()))),
        (None, Some(path)) => {
            let file = std::fs::File::open(path).map_err(|e| {
                Failure::new(
                    exit::FAILURE,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Box::new(std::io::BufReader::new(file).lines())
        }
        (None, None) => Box::new(std::io::stdin().lock().lines()),
    })
}

async fn publish(s: &Session, args: PubArgs) -> Outcome {
    let project = s.project()?.to_owned();
    let attributes: Option<std::collections::BTreeMap<String, String>> =
        (!args.attributes.is_empty()).then(|| args.attributes.iter().cloned().collect());
    // Shown only on a terminal (indicatif hides itself otherwise).
    let progress = indicatif::ProgressBar::new_spinner();
    if args.data.is_some() {
        progress.finish_and_clear();
    }
    let mut ids = Vec::new();
    let mut batch = Vec::new();
    let mut lines = inputs(&args)?;
    loop {
        let line = lines
            .next()
            .transpose()
            .map_err(|e| Failure::new(exit::FAILURE, format!("cannot read the input: {e}")))?;
        let done = line.is_none();
        if let Some(line) = line.filter(|l| !l.is_empty()) {
            let data = if args.base64 {
                line
            } else {
                base64::engine::general_purpose::STANDARD.encode(line.as_bytes())
            };
            batch.push(wire::PublishMessage {
                attributes: attributes.clone(),
                data,
                ..Default::default()
            });
        }
        if !batch.is_empty() && (done || batch.len() >= args.batch as usize) {
            let published = s
                .client
                .publish(&project, &args.topic, &batch)
                .await
                .map_err(|e| {
                    let f = s.fail(e);
                    Failure::new(
                        f.code,
                        format!(
                            "{} ({} messages published before this)",
                            f.message,
                            ids.len()
                        ),
                    )
                })?;
            progress.inc(published.len() as u64);
            progress.set_message(format!("{} published", ids.len() + published.len()));
            ids.extend(published);
            batch.clear();
        }
        if done {
            break;
        }
    }
    progress.finish_and_clear();
    match s.format {
        Format::Json => output::json(&serde_json::json!({ "messageIds": ids })),
        Format::Human => match ids.as_slice() {
            [] => say!("nothing to publish (the input was empty)"),
            [one] => say!("published message {one}"),
            [first, .., last] => say!("published {} messages ({first}..{last})", ids.len()),
        },
    }
    Ok(())
}

async fn subscribe(s: &Session, args: SubArgs) -> Outcome {
    let project = s.project()?.to_owned();
    let mut stream = s
        .client
        .stream_subscription(&project, &args.subscription, Some(args.window), false)
        .await
        .map_err(|e| s.fail(e))?;
    let mut seen = 0u64;
    while args.count.is_none_or(|n| seen < n) {
        let Some(next) = stream.next().await else {
            return Err(Failure::new(exit::FAILURE, "the server ended the stream"));
        };
        let m = next.map_err(|e| s.fail(e))?;
        // A message that could not be shown is not acknowledged.
        match s.format {
            Format::Json => output::json_line(&m),
            Format::Human => output::message_line(&m.message),
        }
        .map_err(output_failed)?;
        if !args.no_ack {
            s.client
                .acknowledge(
                    &project,
                    &args.subscription,
                    std::slice::from_ref(&m.ack_id),
                )
                .await
                .map_err(|e| s.fail(e))?;
        }
        seen += 1;
    }
    Ok(())
}

/// Standard output refused a message (its reader went away): stop, without
/// acknowledging what was not shown.
fn output_failed(e: std::io::Error) -> Failure {
    Failure::new(exit::FAILURE, format!("cannot write the output: {e}"))
}

async fn tail(s: &Session, args: TailArgs) -> Outcome {
    let project = s.project()?.to_owned();
    let start = match (args.last, args.from, args.time) {
        (Some(n), _, _) => TailStart::Last(n),
        (_, Some(o), _) => TailStart::Offset(o),
        (_, _, Some(t)) => TailStart::Time(t),
        _ => TailStart::End,
    };
    let mut tail = s
        .client
        .tail_topic(&project, &args.topic, start, args.count)
        .await
        .map_err(|e| s.fail(e))?;
    while let Some(next) = tail.next().await {
        let m = next.map_err(|e| s.fail(e))?;
        match s.format {
            Format::Json => output::json_line(&m),
            Format::Human => output::message_line(&m),
        }
        .map_err(output_failed)?;
    }
    Ok(())
}

async fn pull(s: &Session, args: PullArgs) -> Outcome {
    let project = s.project()?;
    let messages = s
        .client
        .pull(project, &args.subscription, args.max, !args.wait)
        .await
        .map_err(|e| s.fail(e))?;
    match s.format {
        Format::Json => output::json(&serde_json::json!({ "receivedMessages": messages })),
        Format::Human if messages.is_empty() => say!("no messages"),
        Format::Human => {
            for m in &messages {
                output::message_line(&m.message).map_err(output_failed)?;
            }
        }
    }
    if args.ack && !messages.is_empty() {
        let ids: Vec<String> = messages.iter().map(|m| m.ack_id.clone()).collect();
        s.client
            .acknowledge(project, &args.subscription, &ids)
            .await
            .map_err(|e| s.fail(e))?;
    }
    Ok(())
}

async fn ack(s: &Session, args: AckArgs) -> Outcome {
    let project = s.project()?;
    // A bare offset is completed into the ack id it stands for.
    let ids: Vec<String> = args
        .ack_ids
        .iter()
        .map(|id| {
            if id.chars().all(|c| c.is_ascii_digit()) {
                format!(
                    "projects/{project}/subscriptions/{}:{id}",
                    args.subscription
                )
            } else {
                id.clone()
            }
        })
        .collect();
    s.client
        .acknowledge(project, &args.subscription, &ids)
        .await
        .map_err(|e| s.fail(e))?;
    match s.format {
        Format::Json => output::json(&serde_json::json!({})),
        Format::Human => say!(
            "acknowledged up to {}",
            ids.last().map_or("", |i| i.as_str())
        ),
    }
    Ok(())
}

async fn seek(s: &Session, args: SeekArgs) -> Outcome {
    let project = s.project()?;
    let offset = match (args.offset, &args.time) {
        (Some(o), _) => o,
        (None, Some(t)) => s
            .client
            .time_to_offset(project, &args.subscription, t)
            .await
            .map_err(|e| s.fail(e))?,
        (None, None) => return Err(Failure::new(exit::USAGE, "give --offset or --time")),
    };
    s.client
        .modify_offset(project, &args.subscription, offset)
        .await
        .map_err(|e| s.fail(e))?;
    match s.format {
        Format::Json => output::json(&serde_json::json!({ "offset": offset })),
        Format::Human => say!("{} now starts at offset {offset}", args.subscription),
    }
    Ok(())
}

fn project_row(p: &wire::Project) -> Vec<String> {
    vec![
        p.name.clone(),
        p.created_on.clone(),
        p.created_by.clone(),
        p.description.clone(),
    ]
}

async fn projects(s: &Session, c: ProjectsCommand) -> Outcome {
    let client = &s.client;
    match c {
        ProjectsCommand::List => {
            let list = client.list_projects().await.map_err(|e| s.fail(e))?;
            match s.format {
                Format::Json => output::json(&serde_json::json!({ "projects": list })),
                Format::Human => output::table(
                    &["name", "created", "by", "description"],
                    list.iter().map(project_row).collect(),
                ),
            }
        }
        ProjectsCommand::Show(OptionalName { name }) => {
            let name = match name {
                Some(n) => n,
                None => s.project()?.to_owned(),
            };
            let p = client.get_project(&name).await.map_err(|e| s.fail(e))?;
            show(s, &p, || {
                output::fields(&[
                    ("name", p.name.clone()),
                    ("created", p.created_on.clone()),
                    ("modified", p.modified_on.clone()),
                    ("created by", p.created_by.clone()),
                    ("description", p.description.clone()),
                ])
            });
        }
        ProjectsCommand::Create { name, description } => {
            let p = client
                .create_project(&name, description.as_deref())
                .await
                .map_err(|e| s.fail(e))?;
            show(s, &p, || say!("created project {}", p.name));
        }
        ProjectsCommand::Delete(NameArg { name }) => {
            client.delete_project(&name).await.map_err(|e| s.fail(e))?;
            done(s, &format!("deleted project {name}"));
        }
    }
    Ok(())
}

async fn topics(s: &Session, c: TopicsCommand) -> Outcome {
    let project = s.project()?;
    let client = &s.client;
    match c {
        TopicsCommand::List => {
            let list = client.list_topics(project).await.map_err(|e| s.fail(e))?;
            match s.format {
                Format::Json => output::json(&serde_json::json!({ "topics": list })),
                Format::Human => output::table(
                    &["name", "created", "schema"],
                    list.iter()
                        .map(|t| {
                            vec![
                                short(&t.name).to_owned(),
                                t.created_on.clone(),
                                short(&t.schema).to_owned(),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        TopicsCommand::Show(NameArg { name }) => {
            let t = client
                .get_topic(project, &name)
                .await
                .map_err(|e| s.fail(e))?;
            show(s, &t, || {
                output::fields(&[
                    ("name", t.name.clone()),
                    ("created", t.created_on.clone()),
                    ("schema", t.schema.clone()),
                ])
            });
        }
        TopicsCommand::Create { name, schema } => {
            let schema = schema.map(|sc| format!("projects/{project}/schemas/{sc}"));
            let t = client
                .create_topic(project, &name, schema.as_deref())
                .await
                .map_err(|e| s.fail(e))?;
            show(s, &t, || say!("created topic {}", t.name));
        }
        TopicsCommand::Delete(NameArg { name }) => {
            client
                .delete_topic(project, &name)
                .await
                .map_err(|e| s.fail(e))?;
            done(s, &format!("deleted topic {name}"));
        }
    }
    Ok(())
}

fn subscription_fields(sub: &wire::Subscription) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("name", sub.name.clone()),
        ("topic", sub.topic.clone()),
        ("ack deadline", format!("{} s", sub.ack_deadline_seconds)),
        ("created", sub.created_on.clone()),
    ];
    if !sub.push_config.push_endpoint.is_empty() {
        fields.push(("push endpoint", sub.push_config.push_endpoint.clone()));
    }
    if !sub.push_status.is_empty() {
        fields.push(("push status", sub.push_status.clone()));
    }
    fields
}

async fn subscriptions(s: &Session, c: SubscriptionsCommand) -> Outcome {
    let project = s.project()?;
    let client = &s.client;
    match c {
        SubscriptionsCommand::List => {
            let list = client
                .list_subscriptions(project)
                .await
                .map_err(|e| s.fail(e))?;
            match s.format {
                Format::Json => output::json(&serde_json::json!({ "subscriptions": list })),
                Format::Human => output::table(
                    &["name", "topic", "ack deadline", "created"],
                    list.iter()
                        .map(|sub| {
                            vec![
                                short(&sub.name).to_owned(),
                                short(&sub.topic).to_owned(),
                                format!("{} s", sub.ack_deadline_seconds),
                                sub.created_on.clone(),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        SubscriptionsCommand::Show(NameArg { name }) => {
            let sub = client
                .get_subscription(project, &name)
                .await
                .map_err(|e| s.fail(e))?;
            show(s, &sub, || output::fields(&subscription_fields(&sub)));
        }
        SubscriptionsCommand::Create {
            name,
            topic,
            ack_deadline,
        } => {
            let sub = client
                .create_subscription(project, &name, &topic, ack_deadline)
                .await
                .map_err(|e| s.fail(e))?;
            show(s, &sub, || {
                say!("created subscription {} on {}", sub.name, sub.topic)
            });
        }
        SubscriptionsCommand::Delete(NameArg { name }) => {
            client
                .delete_subscription(project, &name)
                .await
                .map_err(|e| s.fail(e))?;
            done(s, &format!("deleted subscription {name}"));
        }
    }
    Ok(())
}

async fn users(s: &Session, c: UsersCommand) -> Outcome {
    let client = &s.client;
    match c {
        UsersCommand::List => {
            let list = client.list_users().await.map_err(|e| s.fail(e))?;
            match s.format {
                Format::Json => output::json(&serde_json::json!({ "users": list })),
                Format::Human => output::table(
                    &["name", "projects", "service roles", "created"],
                    list.iter()
                        .map(|u| {
                            vec![
                                u.name.clone(),
                                u.projects
                                    .iter()
                                    .map(|p| format!("{}({})", p.project, p.roles.join(",")))
                                    .collect::<Vec<_>>()
                                    .join(" "),
                                u.service_roles.join(","),
                                u.created_on.clone(),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        UsersCommand::Show(NameArg { name }) => {
            let u = client.get_user(&name).await.map_err(|e| s.fail(e))?;
            show(s, &u, || user_fields(&u));
        }
        UsersCommand::Create {
            name,
            roles,
            service_roles,
            email,
        } => {
            let projects = if roles.is_empty() {
                None
            } else {
                Some(vec![wire::ProjectRoles {
                    project: s.project()?.to_owned(),
                    roles: Some(roles),
                }])
            };
            let body = wire::UserBody {
                email,
                projects,
                service_roles: (!service_roles.is_empty()).then_some(service_roles),
                ..Default::default()
            };
            let u = client
                .create_user(&name, &body)
                .await
                .map_err(|e| s.fail(e))?;
            show(s, &u, || user_fields(&u));
        }
        UsersCommand::Delete(NameArg { name }) => {
            client.delete_user(&name).await.map_err(|e| s.fail(e))?;
            done(s, &format!("deleted user {name}"));
        }
    }
    Ok(())
}

fn user_fields(u: &wire::User) {
    let mut fields = vec![("name", u.name.clone()), ("uuid", u.uuid.clone())];
    if !u.token.is_empty() {
        fields.push(("token", u.token.clone()));
    }
    for p in &u.projects {
        fields.push(("project", format!("{} ({})", p.project, p.roles.join(", "))));
    }
    fields.push(("service roles", u.service_roles.join(", ")));
    fields.push(("email", u.email.clone()));
    fields.push(("created", u.created_on.clone()));
    output::fields(&fields);
}

async fn acl(s: &Session, c: AclCommand) -> Outcome {
    let project = s.project()?;
    let client = &s.client;
    match c {
        AclCommand::Show { kind, name } => {
            let users = match kind {
                AclKind::Topic => client.topic_acl(project, &name).await,
                AclKind::Subscription => client.subscription_acl(project, &name).await,
            }
            .map_err(|e| s.fail(e))?;
            match s.format {
                Format::Json => output::json(&serde_json::json!({ "authorized_users": users })),
                Format::Human if users.is_empty() => say!("(nobody)"),
                Format::Human => users.iter().for_each(|u| say!("{u}")),
            }
        }
        AclCommand::Set { kind, name, users } => {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            match kind {
                AclKind::Topic => client.modify_topic_acl(project, &name, &users).await,
                AclKind::Subscription => {
                    client.modify_subscription_acl(project, &name, &users).await
                }
            }
            .map_err(|e| s.fail(e))?;
            done(s, &format!("access list of {name}: {}", users.join(", ")));
        }
    }
    Ok(())
}

/// Prints a resource as JSON, or the human rendering.
fn show<T: serde::Serialize>(s: &Session, value: &T, human: impl FnOnce()) {
    match s.format {
        Format::Json => output::json(value),
        Format::Human => human(),
    }
}

/// Confirms an action that answers nothing.
fn done(s: &Session, what: &str) {
    match s.format {
        Format::Json => output::json(&serde_json::json!({})),
        Format::Human => say!("{what}"),
    }
}
