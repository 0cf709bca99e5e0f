//! Who may call what: the route → roles table (contract §1.4) as data, and the
//! authentication/authorization steps of the request pipeline (§1.2).
//!
//! Transports (REST today; streams and the CLI later) call
//! [`crate::Ams::authorize`] with the route they matched, so every one of them
//! enforces the same rules.

use uuid::Uuid;

use crate::model::Project;

/// A role, project-scoped or service-wide (contract §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, everywhere.
    ServiceAdmin,
    /// Manages one project.
    ProjectAdmin,
    /// Publishes to a project's topics.
    Publisher,
    /// Consumes a project's subscriptions.
    Consumer,
    /// The push worker account.
    PushWorker,
    /// Reads operational metrics.
    MetricsViewer,
    /// The authentication service's account.
    ArgoApiAuthn,
    /// Sees admin details of status and version.
    AdminViewer,
}

/// Role names accepted in user and member bodies (contract §1.3): the production
/// seed's roles plus the legacy names the original's tests accept. Legacy names
/// grant nothing.
pub const ACCEPTED_ROLES: &[&str] = &[
    "service_admin",
    "admin_viewer",
    "metrics_viewer",
    "argo_api_authn",
    "push_worker",
    "project_admin",
    "publisher",
    "consumer",
    "admin",
    "viewer",
    "producer",
];

/// Checks role names against [`ACCEPTED_ROLES`], in order.
pub fn validate_roles(roles: &[String]) -> Result<(), crate::Error> {
    match roles.iter().find(|r| !ACCEPTED_ROLES.contains(&r.as_str())) {
        Some(bad) => Err(crate::Error::InvalidRole(bad.clone())),
        None => Ok(()),
    }
}

impl Role {
    /// The role a stored name grants, if any.
    pub fn parse(name: &str) -> Option<Role> {
        Some(match name {
            "service_admin" => Role::ServiceAdmin,
            "project_admin" => Role::ProjectAdmin,
            "publisher" => Role::Publisher,
            "consumer" => Role::Consumer,
            "push_worker" => Role::PushWorker,
            "metrics_viewer" => Role::MetricsViewer,
            "argo_api_authn" => Role::ArgoApiAuthn,
            "admin_viewer" => Role::AdminViewer,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ServiceAdmin => "service_admin",
            Role::ProjectAdmin => "project_admin",
            Role::Publisher => "publisher",
            Role::Consumer => "consumer",
            Role::PushWorker => "push_worker",
            Role::MetricsViewer => "metrics_viewer",
            Role::ArgoApiAuthn => "argo_api_authn",
            Role::AdminViewer => "admin_viewer",
        }
    }
}

macro_rules! routes {
    ($( $variant:ident = $name:literal : [$($role:ident),*] ),* $(,)?) => {
        /// Every route of the API by its AMS name, in the original's matching order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Route { $( #[doc = $name] $variant, )* }

        impl Route {
            /// All routes, in table order.
            pub const ALL: &'static [Route] = &[$(Route::$variant),*];

            /// The AMS route name, e.g. `topics:publish`.
            pub fn name(self) -> &'static str {
                match self { $(Route::$variant => $name,)* }
            }

            /// Roles allowed to call the route (the default seed). Open routes
            /// have none: they do their own token handling.
            pub fn roles(self) -> &'static [Role] {
                match self { $(Route::$variant => &[$(Role::$role),*],)* }
            }
        }
    };
}

// The production seed of contract §1.4, with the recommended rows for routes the
// seed lacks. SA = ServiceAdmin, PA = ProjectAdmin, and so on.
routes! {
    AmsMetrics = "ams:metrics": [ServiceAdmin, MetricsViewer, ProjectAdmin],
    AmsHealthStatus = "ams:healthStatus": [],
    AmsVaMetrics = "ams:vaMetrics": [ServiceAdmin, MetricsViewer],
    UsersByToken = "users:byToken": [ServiceAdmin, PushWorker],
    UsersByUuid = "users:byUUID": [ServiceAdmin, ArgoApiAuthn],
    UsersList = "users:list": [ServiceAdmin, ProjectAdmin],
    UsersProfile = "users:profile": [],
    UsersUsageReport = "users:usageReport": [],
    UsersShow = "users:show": [ServiceAdmin, ProjectAdmin],
    UsersRefreshToken = "users:refreshToken": [ServiceAdmin, ProjectAdmin],
    UsersCreate = "users:create": [ServiceAdmin, ProjectAdmin],
    UsersUpdate = "users:update": [ServiceAdmin, ProjectAdmin],
    UsersDelete = "users:delete": [ServiceAdmin, ProjectAdmin],
    RegistrationsNewUser = "registrations:newUser": [ServiceAdmin],
    RegistrationsAccept = "registrations:acceptNewUser": [ServiceAdmin],
    RegistrationsDecline = "registrations:declineNewUser": [ServiceAdmin],
    RegistrationsDelete = "registrations:delete": [ServiceAdmin],
    RegistrationsShow = "registrations:show": [ServiceAdmin],
    RegistrationsList = "registrations:list": [ServiceAdmin],
    ProjectsList = "projects:list": [ServiceAdmin],
    ProjectsMetrics = "projects:metrics": [ServiceAdmin, ProjectAdmin],
    ProjectsAddUser = "projects:addUser": [ServiceAdmin, ProjectAdmin],
    ProjectsRemoveUser = "projects:removeUser": [ServiceAdmin, ProjectAdmin],
    ProjectsShowUser = "projects:showUser": [ServiceAdmin, ProjectAdmin],
    ProjectsCreateUser = "projects:createUser": [ServiceAdmin, ProjectAdmin],
    ProjectsUpdateUser = "projects:updateUser": [ServiceAdmin, ProjectAdmin],
    ProjectsListUsers = "projects:listUsers": [ServiceAdmin, ProjectAdmin],
    ProjectsShow = "projects:show": [ServiceAdmin, ProjectAdmin],
    ProjectsCreate = "projects:create": [ServiceAdmin],
    ProjectsUpdate = "projects:update": [ServiceAdmin, ProjectAdmin],
    ProjectsDelete = "projects:delete": [ServiceAdmin, ProjectAdmin],
    SubscriptionsList = "subscriptions:list": [ServiceAdmin, ProjectAdmin, Consumer],
    SubscriptionsListByTopic = "subscriptions:listByTopic": [ServiceAdmin, ProjectAdmin],
    SubscriptionsOffsets = "subscriptions:offsets": [ServiceAdmin, ProjectAdmin, Consumer],
    SubscriptionsTimeToOffset = "subscriptions:timeToOffset": [ServiceAdmin, ProjectAdmin, Consumer],
    SubscriptionsAcl = "subscriptions:acl": [ServiceAdmin, ProjectAdmin],
    SubscriptionsMetrics = "subscriptions:metrics": [ServiceAdmin, ProjectAdmin, Consumer],
    SubscriptionsShow = "subscriptions:show": [ServiceAdmin, ProjectAdmin, Consumer, PushWorker],
    SubscriptionsCreate = "subscriptions:create": [ServiceAdmin, ProjectAdmin],
    SubscriptionsDelete = "subscriptions:delete": [ServiceAdmin, ProjectAdmin],
    SubscriptionsPull = "subscriptions:pull": [ServiceAdmin, ProjectAdmin, Consumer, PushWorker],
    SubscriptionsAcknowledge = "subscriptions:acknowledge": [ServiceAdmin, ProjectAdmin, Consumer, PushWorker],
    SubscriptionsVerifyPushEndpoint = "subscriptions:verifyPushEndpoint": [ServiceAdmin, ProjectAdmin],
    SubscriptionsModifyAckDeadline = "subscriptions:modifyAckDeadline": [ServiceAdmin, ProjectAdmin, Consumer],
    SubscriptionsModifyPushConfig = "subscriptions:modifyPushConfig": [ServiceAdmin, ProjectAdmin],
    SubscriptionsModifyOffset = "subscriptions:modifyOffset": [ServiceAdmin, ProjectAdmin, Consumer],
    SubscriptionsModifyAcl = "subscriptions:modifyAcl": [ServiceAdmin, ProjectAdmin],
    TopicsList = "topics:list": [ServiceAdmin, ProjectAdmin, Publisher],
    TopicsAcl = "topics:acl": [ServiceAdmin, ProjectAdmin],
    TopicsMetrics = "topics:metrics": [ServiceAdmin, ProjectAdmin, Publisher],
    TopicsShow = "topics:show": [ServiceAdmin, ProjectAdmin, Publisher],
    TopicsCreate = "topics:create": [ServiceAdmin, ProjectAdmin],
    TopicsDelete = "topics:delete": [ServiceAdmin, ProjectAdmin],
    TopicsPublish = "topics:publish": [ServiceAdmin, ProjectAdmin, Publisher],
    TopicsModifyAcl = "topics:modifyAcl": [ServiceAdmin, ProjectAdmin],
    TopicsAttachSchema = "topics:attachSchema": [ServiceAdmin, ProjectAdmin],
    TopicsDetachSchema = "topics:detachSchema": [ServiceAdmin, ProjectAdmin],
    SchemasValidateMessage = "schemas:validateMessage": [ServiceAdmin, ProjectAdmin],
    SchemasCreate = "schemas:create": [ServiceAdmin, ProjectAdmin],
    SchemasShow = "schemas:show": [ServiceAdmin, ProjectAdmin],
    SchemasList = "schemas:list": [ServiceAdmin, ProjectAdmin],
    SchemasUpdate = "schemas:update": [ServiceAdmin, ProjectAdmin],
    SchemasDelete = "schemas:delete": [ServiceAdmin, ProjectAdmin],
    VersionList = "version:list": [],
    // Ours: the OpenAPI document of this API.
    ApiDocument = "openapi:show": [],
    // Ours: live streams. A subscription streams to whoever may pull it; a
    // topic's tail shows every message, which only admins may read.
    SubscriptionsStream = "subscriptions:stream": [ServiceAdmin, ProjectAdmin, Consumer],
    TopicsStream = "topics:stream": [ServiceAdmin, ProjectAdmin],
}

impl Route {
    /// Routes outside the auth pipeline (they check tokens themselves).
    pub fn is_open(self) -> bool {
        self.roles().is_empty()
    }
}

/// Who is calling, as established by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's user, `None` for the configured service token.
    pub user: Option<Uuid>,
    /// Roles in the URL's project plus service roles.
    pub roles: Vec<Role>,
}

impl Caller {
    /// The service token's identity: `service_admin` everywhere, no user.
    pub fn service() -> Self {
        Self {
            user: None,
            roles: vec![Role::ServiceAdmin],
        }
    }

    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the caller administers the service (full, unfiltered access).
    pub fn is_service_admin(&self) -> bool {
        self.has(Role::ServiceAdmin)
    }

    /// The user whose ACL entries limit what the caller sees in a listing: a
    /// caller holding `role` (publisher for topics, consumer for subscriptions)
    /// but neither admin role sees only the resources whose ACL names them
    /// (contract §1.5, regardless of `per_resource_auth`).
    pub fn listing_filter(&self, role: Role) -> Option<Uuid> {
        let limited =
            self.has(role) && !self.has(Role::ProjectAdmin) && !self.has(Role::ServiceAdmin);
        if limited { self.user } else { None }
    }
}

/// What the pipeline hands to a route: the caller and, for routes under
/// `/projects/{project}`, the project (already known to exist).
#[derive(Debug, Clone)]
pub struct Context {
    /// Who is calling.
    pub caller: Caller,
    /// The URL's project, when the route has one (and it is not `projects:create`).
    pub project: Option<Project>,
}

impl Context {
    /// The URL's project. Routes under `/projects/{project}` always have one; the
    /// transport guarantees it by calling [`crate::Ams::authorize`] with the name.
    pub fn project(&self) -> &Project {
        self.project
            .as_ref()
            .expect("project-scoped route authorized without its project")
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_route_once() {
        // The original's 64, our OpenAPI document and the two streams.
        assert_eq!(Route::ALL.len(), 67);
        let mut names: Vec<_> = Route::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 67);
        let open: Vec<_> = Route::ALL
            .iter()
            .filter(|r| r.is_open())
            .map(|r| r.name())
            .collect();
        assert_eq!(
            open,
            [
                "ams:healthStatus",
                "users:profile",
                "users:usageReport",
                "version:list",
                "openapi:show"
            ]
        );
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
