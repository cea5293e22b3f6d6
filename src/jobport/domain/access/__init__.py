"""Access as pure data, a module per seam: scopes and the built-in roles (scopes), API key
strings (keys), firewall rules and addresses (firewall), principals and role definitions
(principals), and the records the access services hand out (records). Every public name is
importable from here."""

from jobport.domain.access.firewall import (
    FirewallRule,
    IPAddress,
    address_allowed,
    client_address,
    parse_address,
)
from jobport.domain.access.keys import (
    KEY_PREFIX,
    hash_secret,
    key_string,
    looks_like_client_id,
    new_client_id,
    new_secret,
    parse_key_string,
    secret_matches,
)
from jobport.domain.access.principals import (
    Grant,
    Principal,
    RolePatch,
    RoleSpec,
    is_valid_username,
)
from jobport.domain.access.records import (
    AccessToken,
    ApiKey,
    Identity,
    Member,
    Role,
    RoleHeld,
    Session,
    User,
)
from jobport.domain.access.scopes import (
    BUILTIN_ROLES,
    MEMBER_TYPES,
    RESOURCES,
    SCOPES,
    MemberType,
    check_scope,
    covered,
    scope_covers,
)

__all__ = [
    "BUILTIN_ROLES",
    "KEY_PREFIX",
    "MEMBER_TYPES",
    "RESOURCES",
    "SCOPES",
    "AccessToken",
    "ApiKey",
    "FirewallRule",
    "Grant",
    "IPAddress",
    "Identity",
    "Member",
    "MemberType",
    "Principal",
    "Role",
    "RoleHeld",
    "RolePatch",
    "RoleSpec",
    "Session",
    "User",
    "address_allowed",
    "check_scope",
    "client_address",
    "covered",
    "hash_secret",
    "is_valid_username",
    "key_string",
    "looks_like_client_id",
    "new_client_id",
    "new_secret",
    "parse_address",
    "parse_key_string",
    "scope_covers",
    "secret_matches",
]
