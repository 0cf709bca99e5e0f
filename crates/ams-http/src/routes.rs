//! The route table: every path the API serves, in the original's first-match
//! order (contract §1.4), and the matcher that reproduces gorilla/mux: path
//! variables match `[^/]+`, a `{var}:verb` segment splits the verb off, a path
//! that matches with the wrong method yields 405 unless a later route matches
//! fully, and no match at all is 404.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use ams_core::auth::Route;
use http::Method;

use crate::{
    Call, Handled, members, openapi, projects, registrations, schemas, status, streams,
    subscriptions, topics, usage, users,
};

/// A route's handler.
pub type Handler = fn(Call) -> Pin<Box<dyn Future<Output = Handled> + Send>>;

/// One row of the table.
pub struct Entry {
    /// HTTP method.
    pub method: Method,
    /// Pattern, e.g. `/v1/projects/{project}/topics/{topic}:publish`.
    pub pattern: &'static str,
    /// The AMS route name (and thereby its roles).
    pub route: Route,
    /// The code that serves it.
    pub handler: Handler,
}

macro_rules! table {
    ($($method:ident $pattern:literal => $route:ident, $handler:path;)*) => {
        /// The served routes, in matching order.
        pub fn table() -> Vec<Entry> {
            vec![$(Entry {
                method: Method::$method,
                pattern: $pattern,
                route: Route::$route,
                handler: |call| Box::pin($handler(call)),
            },)*]
        }
    };
}

// The original's 64 routes in its order, plus ours (`/v1/openapi.json`, the
// `:stream` routes), each before the plain route its pattern would also match.
table! {
    GET "/v1/metrics" => AmsMetrics, usage::operational;
    GET "/v1/status" => AmsHealthStatus, status::health;
    GET "/v1/metrics/va_metrics" => AmsVaMetrics, usage::va_metrics;
    GET "/v1/users:byToken/{token}" => UsersByToken, users::by_token;
    GET "/v1/users:byUUID/{uuid}" => UsersByUuid, users::by_uuid;
    GET "/v1/users" => UsersList, users::list;
    GET "/v1/users/profile" => UsersProfile, users::profile;
    GET "/v1/users/usageReport" => UsersUsageReport, usage::usage_report;
    GET "/v1/users/{user}" => UsersShow, users::show;
    POST "/v1/users/{user}:refreshToken" => UsersRefreshToken, users::refresh_token;
    POST "/v1/users/{user}" => UsersCreate, users::create;
    PUT "/v1/users/{user}" => UsersUpdate, users::update;
    DELETE "/v1/users/{user}" => UsersDelete, users::delete;
    POST "/v1/registrations" => RegistrationsNewUser, registrations::create;
    POST "/v1/registrations/{uuid}:accept" => RegistrationsAccept, registrations::accept;
    POST "/v1/registrations/{uuid}:decline" => RegistrationsDecline, registrations::decline;
    DELETE "/v1/registrations/{uuid}" => RegistrationsDelete, registrations::delete;
    GET "/v1/registrations/{uuid}" => RegistrationsShow, registrations::show;
    GET "/v1/registrations" => RegistrationsList, registrations::list;
    GET "/v1/projects" => ProjectsList, projects::list;
    GET "/v1/projects/{project}:metrics" => ProjectsMetrics, projects::metrics;
    POST "/v1/projects/{project}/members/{user}:add" => ProjectsAddUser, members::add;
    POST "/v1/projects/{project}/members/{user}:remove" => ProjectsRemoveUser, members::remove;
    GET "/v1/projects/{project}/members/{user}" => ProjectsShowUser, members::show;
    POST "/v1/projects/{project}/members/{user}" => ProjectsCreateUser, members::create;
    PUT "/v1/projects/{project}/members/{user}" => ProjectsUpdateUser, members::update;
    GET "/v1/projects/{project}/members" => ProjectsListUsers, members::list;
    GET "/v1/projects/{project}/subscriptions" => SubscriptionsList, subscriptions::list;
    GET "/v1/projects/{project}/topics/{topic}/subscriptions" => SubscriptionsListByTopic, topics::subscriptions;
    GET "/v1/projects/{project}/subscriptions/{subscription}:offsets" => SubscriptionsOffsets, subscriptions::offsets;
    GET "/v1/projects/{project}/subscriptions/{subscription}:timeToOffset" => SubscriptionsTimeToOffset, subscriptions::time_to_offset;
    GET "/v1/projects/{project}/subscriptions/{subscription}:acl" => SubscriptionsAcl, subscriptions::acl;
    GET "/v1/projects/{project}/subscriptions/{subscription}:metrics" => SubscriptionsMetrics, subscriptions::metrics;
    GET "/v1/projects/{project}/subscriptions/{subscription}:stream" => SubscriptionsStream, streams::subscription;
    GET "/v1/projects/{project}/subscriptions/{subscription}" => SubscriptionsShow, subscriptions::show;
    PUT "/v1/projects/{project}/subscriptions/{subscription}" => SubscriptionsCreate, subscriptions::create;
    DELETE "/v1/projects/{project}/subscriptions/{subscription}" => SubscriptionsDelete, subscriptions::delete;
    POST "/v1/projects/{project}/subscriptions/{subscription}:pull" => SubscriptionsPull, subscriptions::pull;
    POST "/v1/projects/{project}/subscriptions/{subscription}:acknowledge" => SubscriptionsAcknowledge, subscriptions::acknowledge;
    POST "/v1/projects/{project}/subscriptions/{subscription}:verifyPushEndpoint" => SubscriptionsVerifyPushEndpoint, subscriptions::verify_push_endpoint;
    POST "/v1/projects/{project}/subscriptions/{subscription}:modifyAckDeadline" => SubscriptionsModifyAckDeadline, subscriptions::modify_ack_deadline;
    POST "/v1/projects/{project}/subscriptions/{subscription}:modifyPushConfig" => SubscriptionsModifyPushConfig, subscriptions::modify_push_config;
    POST "/v1/projects/{project}/subscriptions/{subscription}:modifyOffset" => SubscriptionsModifyOffset, subscriptions::modify_offset;
    POST "/v1/projects/{project}/subscriptions/{subscription}:modifyAcl" => SubscriptionsModifyAcl, subscriptions::modify_acl;
    GET "/v1/projects/{project}/topics" => TopicsList, topics::list;
    GET "/v1/projects/{project}/topics/{topic}:acl" => TopicsAcl, topics::acl;
    GET "/v1/projects/{project}/topics/{topic}:metrics" => TopicsMetrics, topics::metrics;
    GET "/v1/projects/{project}/topics/{topic}:stream" => TopicsStream, streams::topic;
    GET "/v1/projects/{project}/topics/{topic}" => TopicsShow, topics::show;
    PUT "/v1/projects/{project}/topics/{topic}" => TopicsCreate, topics::create;
    DELETE "/v1/projects/{project}/topics/{topic}" => TopicsDelete, topics::delete;
    POST "/v1/projects/{project}/topics/{topic}:publish" => TopicsPublish, topics::publish;
    POST "/v1/projects/{project}/topics/{topic}:modifyAcl" => TopicsModifyAcl, topics::modify_acl;
    POST "/v1/projects/{project}/topics/{topic}:attachSchema" => TopicsAttachSchema, topics::attach_schema;
    POST "/v1/projects/{project}/topics/{topic}:detachSchema" => TopicsDetachSchema, topics::detach_schema;
    POST "/v1/projects/{project}/schemas/{schema}:validate" => SchemasValidateMessage, schemas::validate;
    POST "/v1/projects/{project}/schemas/{schema}" => SchemasCreate, schemas::create;
    GET "/v1/projects/{project}/schemas/{schema}" => SchemasShow, schemas::show;
    GET "/v1/projects/{project}/schemas" => SchemasList, schemas::list;
    PUT "/v1/projects/{project}/schemas/{schema}" => SchemasUpdate, schemas::update;
    DELETE "/v1/projects/{project}/schemas/{schema}" => SchemasDelete, schemas::delete;
    GET "/v1/version" => VersionList, status::version;
    GET "/v1/openapi.json" => ApiDocument, openapi::show;
    GET "/v1/projects/{project}" => ProjectsShow, projects::show;
    POST "/v1/projects/{project}" => ProjectsCreate, projects::create;
    PUT "/v1/projects/{project}" => ProjectsUpdate, projects::update;
    DELETE "/v1/projects/{project}" => ProjectsDelete, projects::delete;
}

/// Path variables captured by a match, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The value of variable `name`, if the route has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a variable the matched route is known to have.
    pub fn var(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    /// The first variable (in alphabetical order of names, as the original
    /// checks them) whose value is not a valid AMS name.
    pub fn first_invalid(&self) -> Option<&'static str> {
        // The alphabetically first of the invalid ones.
        self.0
            .iter()
            .filter(|(_, v)| !ams_types::names::is_valid_name(v))
            .map(|(n, _)| *n)
            .min()
    }
}

/// Result of matching a request against the table.
pub enum Match {
    /// A route matched path and method.
    Found(Route, Handler, Params),
    /// The path matched only routes of other methods.
    MethodNotAllowed,
    /// Nothing matched.
    NotFound,
}

/// The compiled table.
pub struct Router {
    entries: Vec<(Method, Vec<Segment>, Route, Handler)>,
    /// Candidates by segment count, in table order: a path is only tried
    /// against the patterns of its length (first match still wins, as
    /// patterns of other lengths cannot match it).
    by_len: Vec<Shapes>,
}

/// The patterns of one length, by the verb of their last segment.
struct Shapes {
    /// For each verb (`:publish`), the patterns ending in that verb or in no
    /// verb, in table order.
    verbs: Vec<(&'static str, Vec<usize>)>,
    /// The patterns ending in no verb, in table order: the only candidates
    /// of a path whose last segment ends in no known verb.
    plain: Vec<usize>,
}

impl Shapes {
    /// Indexes `bucket`, the patterns of one length in table order.
    fn new(entries: &[(Method, Vec<Segment>, Route, Handler)], bucket: &[usize]) -> Self {
        let verb = |i: usize| match entries[i].1.last() {
            Some(Segment::VarVerb(_, verb)) => Some(*verb),
            _ => None,
        };
        let having = |keep: &dyn Fn(Option<&str>) -> bool| -> Vec<usize> {
            bucket.iter().copied().filter(|&i| keep(verb(i))).collect()
        };
        let mut verbs: Vec<(&'static str, Vec<usize>)> = Vec::new();
        for v in bucket.iter().filter_map(|&i| verb(i)) {
            if !verbs.iter().any(|(seen, _)| *seen == v) {
                verbs.push((v, having(&|w| w.is_none_or(|w| w == v))));
            }
        }
        Self {
            verbs,
            plain: having(&|w| w.is_none()),
        }
    }

    /// The candidates of a path whose last segment is `last`. A pattern's
    /// verb starts with its only `:`, so a segment can end with one verb at
    /// most: the part from its last `:`.
    fn candidates(&self, last: &str) -> &[usize] {
        last.rfind(':')
            .and_then(|at| {
                let verb = &last[at..];
                self.verbs.iter().find(|(v, _)| *v == verb)
            })
            .map_or(&self.plain, |(_, list)| list)
    }
}

/// Most `/`-separated segments of any pattern in [`table`].
const MAX_SEGMENTS: usize = 12;

#[derive(Debug)]
enum Segment {
    Literal(&'static str),
    Var(&'static str),
    VarVerb(&'static str, &'static str),
}

impl Router {
    /// Compiles [`table`].
    pub fn new() -> Self {
        let entries: Vec<_> = table()
            .into_iter()
            .map(|e| (e.method, compile(e.pattern), e.route, e.handler))
            .collect();
        let mut buckets = vec![Vec::new(); MAX_SEGMENTS + 1];
        for (i, (_, segments, _, _)) in entries.iter().enumerate() {
            assert!(segments.len() <= MAX_SEGMENTS, "raise MAX_SEGMENTS");
            buckets[segments.len()].push(i);
        }
        let by_len = buckets.iter().map(|b| Shapes::new(&entries, b)).collect();
        Self { entries, by_len }
    }

    /// Matches a decoded path.
    pub fn find(&self, method: &Method, path: &str) -> Match {
        let mut parts = [""; MAX_SEGMENTS];
        let mut n = 0;
        // Split as bytes: `str::split` costs several times more per request.
        let mut start = 0;
        let slashes = path
            .bytes()
            .enumerate()
            .filter_map(|(i, b)| (b == b'/').then_some(i));
        for end in slashes.chain([path.len()]) {
            // Longer than every pattern: nothing can match.
            let Some(slot) = parts.get_mut(n) else {
                return Match::NotFound;
            };
            // `/` is ASCII, so both ends are character boundaries.
            *slot = &path[start..end];
            start = end + 1;
            n += 1;
        }
        let parts = &parts[..n];
        let mut wrong_method = false;
        for &i in self.by_len[n].candidates(parts[n - 1]) {
            let (m, segments, route, handler) = &self.entries[i];
            if !matches_path(segments, parts) {
                continue;
            }
            // Variables are captured only for the route that answers: the
            // plain routes of a resource match its `:verb` paths too.
            if m == method {
                return Match::Found(*route, *handler, capture(segments, parts));
            }
            wrong_method = true;
        }
        if wrong_method {
            Match::MethodNotAllowed
        } else {
            Match::NotFound
        }
    }

    /// Every (method, pattern, route) served, for documentation and tests.
    pub fn entries(&self) -> impl Iterator<Item = (&Method, Route)> {
        self.entries.iter().map(|(m, _, r, _)| (m, *r))
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

fn compile(pattern: &'static str) -> Vec<Segment> {
    pattern
        .split('/')
        .map(|seg| match seg.strip_prefix('{') {
            None => Segment::Literal(seg),
            Some(rest) => {
                let (name, verb) = rest.split_once('}').expect("pattern variable closes");
                if verb.is_empty() {
                    Segment::Var(name)
                } else {
                    // What `Shapes::candidates` relies on.
                    assert!(
                        verb.rfind(':') == Some(0),
                        "a verb has one `:`, its first character"
                    );
                    Segment::VarVerb(name, verb)
                }
            }
        })
        .collect()
}

/// Whether `parts` (a path split at `/`) match `segments`. Compared from the
/// end: every pattern starts `/v1/...`, while the last segments (verb,
/// collection) tell the patterns apart, so most mismatches are found at the
/// first comparison.
fn matches_path(segments: &[Segment], parts: &[&str]) -> bool {
    segments.len() == parts.len()
        && segments
            .iter()
            .zip(parts)
            .rev()
            .all(|(seg, part)| seg.value(part).is_some())
}

/// The variables of `parts`, which match `segments`.
fn capture(segments: &[Segment], parts: &[&str]) -> Params {
    Params(
        segments
            .iter()
            .zip(parts)
            .filter_map(|(seg, part)| Some((seg.name()?, seg.value(part)?.to_owned())))
            .collect(),
    )
}

impl Segment {
    /// What this segment captures of `part`, `""` for a literal; `None` when
    /// `part` does not match.
    fn value<'a>(&self, part: &'a str) -> Option<&'a str> {
        match self {
            Segment::Literal(lit) => (lit == &part).then_some(""),
            Segment::Var(_) => (!part.is_empty()).then_some(part),
            Segment::VarVerb(_, verb) => part.strip_suffix(verb).filter(|v| !v.is_empty()),
        }
    }

    /// The variable's name; `None` for a literal.
    fn name(&self) -> Option<&'static str> {
        match self {
            Segment::Literal(_) => None,
            Segment::Var(name) | Segment::VarVerb(name, _) => Some(name),
        }
    }
}

/// The cleaned form of a path (`//`, `.` and `..` resolved, trailing slash
/// kept), as Go's router computes it before redirecting with 301. Borrowed
/// when the path is clean already, as nearly every request's is.
pub fn clean_path(path: &str) -> Cow<'_, str> {
    if is_clean(path) {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(cleaned(path))
    }
}

/// [`clean_path`]'s work.
fn cleaned(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut cleaned = format!("/{}", out.join("/"));
    if path.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// Whether [`clean_path`] would return `path` unchanged: rooted, and no
/// empty, `.` or `..` segment (but for one trailing slash).
fn is_clean(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    // Split as bytes: `str::split` costs several times more per request.
    rest.as_bytes()
        .split(|&b| b == b'/')
        .all(|s| !matches!(s, b"" | b"." | b".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(m: &Method, p: &str) -> (Route, Params) {
        match Router::new().find(m, p) {
            Match::Found(r, _, params) => (r, params),
            _ => panic!("{p} did not match"),
        }
    }

    #[test]
    fn verbs_split_off_and_unknown_verbs_fall_through() {
        let (r, p) = found(&Method::POST, "/v1/projects/P/topics/t1:publish");
        assert_eq!((r, p.var("topic")), (Route::TopicsPublish, "t1"));
        let (r, p) = found(&Method::GET, "/v1/projects/P/topics/t1:foo");
        assert_eq!((r, p.var("topic")), (Route::TopicsShow, "t1:foo"));
        assert_eq!(p.first_invalid(), Some("topic"));
        let (r, _) = found(&Method::PUT, "/v1/projects/P/subscriptions/s:pull");
        assert_eq!(r, Route::SubscriptionsCreate);
        let (r, p) = found(&Method::POST, "/v1/projects/P/topics/a:b:publish");
        assert_eq!((r, p.var("topic")), (Route::TopicsPublish, "a:b"));
    }

    #[test]
    fn wrong_method_is_405_and_unknown_path_404() {
        let router = Router::new();
        let is = |m: Method, p: &str, want: &str| {
            let got = match router.find(&m, p) {
                Match::Found(..) => "found",
                Match::MethodNotAllowed => "405",
                Match::NotFound => "404",
            };
            assert_eq!(got, want, "{m} {p}");
        };
        is(
            Method::POST,
            "/v1/projects/P/subscriptions/s:modifyPushStatus",
            "405",
        );
        is(Method::PATCH, "/v1/projects", "405");
        is(Method::GET, "/v1/projects/", "404");
        is(Method::GET, "/v1/nothing", "404");
        is(Method::GET, "/v1/projects/P/topics/", "404");
        is(Method::GET, &"/v1".repeat(MAX_SEGMENTS + 1), "404");
    }

    /// The verb index and the end-first comparison change nothing: every
    /// pattern, filled with values that do and do not look like verbs, and
    /// every method, match as a plain first-match scan of the table does.
    #[test]
    fn indexed_matching_is_the_plain_table_scan() {
        let router = Router::new();
        let plain = |method: &Method, path: &str| -> String {
            let parts: Vec<&str> = path.split('/').collect();
            let mut wrong_method = false;
            for (m, segments, route, _) in &router.entries {
                if matches_path(segments, &parts) {
                    if m == method {
                        return format!("{route:?} {:?}", capture(segments, &parts));
                    }
                    wrong_method = true;
                }
            }
            if wrong_method { "405" } else { "404" }.to_string()
        };
        let indexed = |method: &Method, path: &str| match router.find(method, path) {
            Match::Found(route, _, params) => format!("{route:?} {params:?}"),
            Match::MethodNotAllowed => "405".into(),
            Match::NotFound => "404".into(),
        };
        let values = [
            "x",
            "a:b",
            "t:publish",
            ":pull",
            "s:",
            "s:acl:pull",
            "s:nope",
        ];
        let methods = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ];
        let mut checked = 0;
        for e in table() {
            for value in values {
                for verb_tail in ["", ":publish", ":pull", ":acl", ":zzz"] {
                    let rendered: Vec<String> = compile(e.pattern)
                        .iter()
                        .map(|seg| match seg {
                            Segment::Literal(l) => l.to_string(),
                            Segment::Var(_) => value.to_string(),
                            Segment::VarVerb(_, verb) => format!("{value}{verb}"),
                        })
                        .collect();
                    let mut path = rendered.join("/");
                    path.push_str(verb_tail);
                    for m in &methods {
                        assert_eq!(indexed(m, &path), plain(m, &path), "{m} {path}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn names_are_checked_alphabetically() {
        let (_, p) = found(&Method::GET, "/v1/projects/b.d/subscriptions/s.x");
        assert_eq!(p.first_invalid(), Some("project"));
    }

    #[test]
    fn path_cleaning() {
        assert_eq!(clean_path("/v1//projects"), "/v1/projects");
        assert_eq!(clean_path("/v1/./projects/"), "/v1/projects/");
        assert_eq!(clean_path("/v1/x/../projects"), "/v1/projects");
        assert_eq!(clean_path("/v1/projects"), "/v1/projects");
        assert!(matches!(clean_path("/v1/projects"), Cow::Borrowed(_)));
    }

    #[test]
    fn clean_paths_are_recognised_without_cleaning() {
        for p in [
            "",
            "/",
            "//",
            "/a",
            "/a/",
            "/a//",
            "/a/b",
            "/a/./b",
            "/a/../b",
            "/.",
            "/..",
            "/a/.",
            "/a/..",
            "/a/.b",
            "/a/..b/",
            "a/b",
            "/v1/projects/P/topics/t:publish",
        ] {
            let slow = cleaned(p);
            assert_eq!(is_clean(p), slow == p, "{p:?}");
            assert_eq!(clean_path(p), slow, "{p:?}");
        }
    }
}
