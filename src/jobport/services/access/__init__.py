"""Access use-cases: who calls (authentication), may they (authorization), and the keys,
roles and users that decide it. Callers use this package's names
(`from jobport.services import access`; `access.authenticate_key(...)`)."""

from jobport.domain import access as rules
from jobport.services.access.authentication import (
    authenticate_key,
    authenticate_session,
    authenticate_token,
    issue_token,
    login,
    logout,
)
from jobport.services.access.authorization import (
    authorize,
    check,
    describe,
    local_principal,
)
from jobport.services.access.bootstrap import bootstrap
from jobport.services.access.keys import (
    add_current_address,
    create_key,
    delete_key,
    get_key,
    list_keys,
    patch_key,
    rotate_key,
)
from jobport.services.access.roles import (
    add_member,
    create_role,
    delete_role,
    get_role,
    list_roles,
    patch_role,
    remove_member,
)
from jobport.services.access.state import AccessState, forget_cached
from jobport.services.access.users import (
    MIN_PASSWORD_LENGTH,
    create_user,
    list_users,
    set_password,
)

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "AccessState",
    "add_current_address",
    "add_member",
    "authenticate_key",
    "authenticate_session",
    "authenticate_token",
    "authorize",
    "bootstrap",
    "check",
    "create_key",
    "create_role",
    "create_user",
    "delete_key",
    "delete_role",
    "describe",
    "forget_cached",
    "get_key",
    "get_role",
    "issue_token",
    "list_keys",
    "list_roles",
    "list_users",
    "local_principal",
    "login",
    "logout",
    "patch_key",
    "patch_role",
    "remove_member",
    "rotate_key",
    "rules",
    "set_password",
]
