"""What happens once an identity provider vouched for someone: which account, whether to make one, groups.

Accounts are matched by the provider's subject when the account signed in
through it before, otherwise by an email address the provider says it has
verified; an unverified address never matches nor creates anything. A new
account is made only when OIDC_AUTO_CREATE allows it, for the allowed email
domains. Group mappings are applied at each sign-in. Every refusal is a
styled page and one log line, and never leaves a session behind.
"""

import logging

from django.conf import settings
from django.contrib.auth import login
from django.db import transaction
from django.shortcuts import render

from corporate.auth import client_address
from corporate.redirects import redirect_next
from sso.provider import merged_claims

log = logging.getLogger(__name__)

BACKEND = "django.contrib.auth.backends.ModelBackend"
SESSION_PROVIDER = "sso_provider"
SESSION_ID_TOKEN = "sso_id_token"


def refuse(request, slug, reason, message, status=403):
    """The styled refusal page, one log line, and no new session (one signed in before the flow stays)."""
    log.warning("sso: sign-in through %s refused from %s: %s", slug, client_address(request), reason)
    restore_link(request)
    from sso import events

    events.sso_refused(request, slug, reason)
    if getattr(request, "sso_signed_in", False):
        # Only a session this request made is ended: a stray or forged callback never signs anyone out.
        from django.contrib.auth import logout

        logout(request)
    return render(request, "sso/refused.html", {"message": message}, status=status)


def restore_link(request):
    """Put back the claims the link held before allauth wrote this sign-in's over them (a refused sign-in)."""
    before = getattr(request, "sso_link_before", None)
    if before:
        from allauth.socialaccount.models import SocialAccount

        pk, extra_data = before
        SocialAccount.objects.filter(pk=pk).update(extra_data=extra_data)
        request.sso_link_before = None


def _is_true(value):
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _groups(claims, claim_name):
    value = claims.get(claim_name) if claim_name else None
    if isinstance(value, str):
        return {value}
    if isinstance(value, (list, tuple)):
        return {str(v) for v in value}
    return set()


def complete_sign_in(request, sociallogin):
    from allauth.socialaccount.models import SocialAccount

    from corporate.models import User
    from sso.models import LinkIssuer
    from sso.providers import get_provider

    slug = sociallogin.account.provider
    provider = get_provider(slug)
    if provider is None:
        return refuse(request, slug, "the provider is not configured", "This sign-in method is not available.")
    claims = merged_claims(sociallogin.account.extra_data)
    subject = str(sociallogin.account.uid)
    email = str(claims.get("email") or "").strip().lower()
    if not email or "@" not in email:
        return refuse(
            request,
            slug,
            f"no email address for subject {subject}",
            "Your identity provider did not send an email address, so no account can be matched. "
            "Ask your administrator to release the email claim to this application.",
        )
    verified = _is_true(claims.get("email_verified"))
    if not verified and provider.trust_email and "email_verified" not in claims:
        verified = True  # the provider never says; its directory sets the addresses (OIDC_<NAME>_TRUST_EMAIL)
    if not verified:
        return refuse(
            request,
            slug,
            f"the email address {email} is not verified",
            f"Your identity provider has not verified the address {email}, so it cannot be used to sign in here. "
            "Verify it with your identity provider, or ask your administrator.",
        )
    domain = email.rsplit("@", 1)[1]
    domains = provider.domains()
    if domains and domain not in domains:
        return refuse(
            request,
            slug,
            f"the domain of {email} is not allowed",
            f"Accounts at {domain} cannot sign in here. Use your company address.",
        )

    issuer = _issuer(claims.get("iss") or provider.issuer)
    link = SocialAccount.objects.filter(provider=slug, uid=subject).select_related("user").first()
    linked_issuer = _other_issuer(request, link, issuer)
    if linked_issuer:
        return refuse(
            request,
            slug,
            f"subject {subject} is linked to {link.user.email} under the issuer {linked_issuer}, not {issuer}",
            "Your sign-in is linked to an account under an earlier configuration of this identity provider. "
            "Ask your administrator to remove the old link.",
        )
    if link is not None:
        user = link.user
    else:
        # The stored address is lowercased: the same address, not one that merely folds to it (upper('ı') = 'I').
        user = User.objects.filter(email=email).first()
        others = list(SocialAccount.objects.filter(user=user).values_list("provider", flat=True)) if user else []
        if others:
            # Linked to another subject here or to another provider: an address the directory gave to someone
            # else (a leaver's, a rename) or another provider's claim never takes it over. Staff link it by hand.
            return refuse(
                request,
                slug,
                f"{email} is already linked to another identity (through {', '.join(sorted(set(others)))}); "
                f"subject {subject} is not linked",
                "This account is already linked to another single sign-on identity. "
                "Ask your administrator to link it to this one.",
            )
    created = False
    if user is None:
        if not settings.OIDC_AUTO_CREATE:
            return refuse(
                request,
                slug,
                f"no account for {email} and OIDC_AUTO_CREATE is off",
                f"There is no account for {email} here yet. Ask your administrator to create one.",
            )
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=None, full_name=str(claims.get("name") or "")[:150])
        created = True
    if not user.is_active:
        return refuse(
            request,
            slug,
            f"the account {user.email} is deactivated",
            "This account has been deactivated. Ask an administrator.",
        )
    with transaction.atomic():
        account, _ = SocialAccount.objects.update_or_create(
            provider=slug, uid=subject, defaults={"user": user, "extra_data": {**_stored_claims(claims), "iss": issuer}}
        )
        LinkIssuer.objects.update_or_create(account=account, defaults={"issuer": issuer})
    request.sso_link_before = None  # accepted: the claims just written stay
    changed = []
    if not user.full_name and claims.get("name"):
        user.full_name = str(claims["name"])[:150]
        changed.append("full_name")
    if settings.OIDC_DISABLE_LOCAL_PASSWORDS and user.has_usable_password():
        user.set_unusable_password()
        changed.append("password")
    if changed:
        user.save(update_fields=changed)

    login(request, user, backend=BACKEND)
    request.sso_signed_in = True
    request.session[SESSION_PROVIDER] = slug
    _remember_sign_out_origin(request, slug)
    id_token = getattr(request, "sso_id_token", "")
    if id_token and len(id_token) < 8000:
        request.session[SESSION_ID_TOKEN] = id_token
    groups = _groups(claims, provider.groups_claim)
    summary = apply_group_mappings(user, provider, groups)
    log.info(
        "sso: %s signed in through %s from %s%s; workspaces %s",
        user.email,
        slug,
        client_address(request),
        " (account created)" if created else "",
        summary or "unchanged",
    )
    from sso import events

    events.sso_sign_in(request, user, slug, created=created, memberships=summary)
    return redirect_next(request, sociallogin.get_redirect_url(request), settings.LOGIN_REDIRECT_URL)


def _issuer(value):
    return str(value or "").strip().rstrip("/")


def _other_issuer(request, link, issuer):
    """The issuer the link was made under when it is not `issuer`; "" when it is, or when the link has none yet.

    The issuer recorded at an accepted sign-in (LinkIssuer) and the one in the
    link's claims as they were before allauth wrote this sign-in's over them (a
    refusal puts them back) must both be this one, or absent (a link staff
    added in the admin).
    """
    from sso.models import LinkIssuer

    if link is None:
        return ""
    before = getattr(request, "sso_link_before", None)
    stored = before[1] if before and before[0] == link.pk else link.extra_data
    found = [
        LinkIssuer.objects.filter(account=link).values_list("issuer", flat=True).first(),
        merged_claims(stored or {}).get("iss"),
    ]
    return next((_issuer(value) for value in found if _issuer(value) not in ("", issuer)), "")


def _stored_claims(claims):
    keep = ("sub", "email", "email_verified", "name", "preferred_username", "iss")
    return {k: claims[k] for k in keep if k in claims}


def mappings_for(provider):
    """(group, workspace, role) for the provider: the environment's and the admin's, with workspaces fetched."""
    from sso.models import GroupMapping
    from workspaces.models import Workspace
    from workspaces.roles import Role

    rows = [
        (m.group, m.workspace, m.role)
        for m in GroupMapping.objects.filter(provider=provider.slug).select_related("workspace")
    ]
    if provider.group_map:
        by_slug = Workspace.objects.in_bulk([slug for _, slug, _ in provider.group_map], field_name="slug")
        for group, slug, role in provider.group_map:
            if slug in by_slug:
                rows.append((group, by_slug[slug], role))
            else:
                log.warning("sso: %s maps group %r to a workspace %r that does not exist", provider.slug, group, slug)
    known = [row for row in rows if row[2] in Role.values]
    for group, workspace, role in rows:
        if role not in Role.values:  # settings and the admin refuse these; a row written some other way is skipped
            log.warning(
                "sso: %s maps group %r to %s with an unknown role %r", provider.slug, group, workspace.slug, role
            )
    return known


def apply_group_mappings(user, provider, groups):
    """Make the user's memberships in mapped workspaces what the groups say; a list of changes, for the log.

    For each workspace the provider's mappings name, the highest role among
    the user's matching groups is set on a membership a mapping made (joining
    the workspace if needed), recorded as the mapping's (ManagedMembership).
    Memberships a mapping made and that no group gives any more are removed.
    A membership made otherwise (by hand, by an invitation) is never removed
    nor lowered below the role it was given: a mapping only raises it, and
    records the role it had (`raised_from`), which is put back when no group
    gives a higher role any more. Workspaces no mapping names are never
    touched, and a workspace's last owner is never demoted.
    """
    from sso.models import ManagedMembership
    from workspaces import services
    from workspaces.models import Membership, Workspace
    from workspaces.roles import rank

    mappings = mappings_for(provider)
    if not mappings:
        return []
    wanted = {}
    for group, workspace, role in mappings:
        if group in groups and (workspace.pk not in wanted or rank(role) > rank(wanted[workspace.pk][1])):
            wanted[workspace.pk] = (workspace, role)
    current = dict(Membership.objects.filter(user=user).values_list("workspace_id", "role"))
    records = {r.workspace_id: r for r in ManagedMembership.objects.filter(provider=provider.slug, user=user)}
    for workspace_id, record in list(records.items()):
        if record.raised_from and workspace_id not in current:
            # The raised membership was removed by hand: there is nothing to put back any more.
            record.delete()
            del records[workspace_id]
    changes = []

    def set_role(workspace, role):
        if services.set_role_from_directory(user, workspace, role):
            changes.append(f"{workspace.slug}={role}")
            return True
        log.warning("sso: %s stays owner of %s: a workspace keeps one owner", user.email, workspace.slug)
        return False

    def put_back(workspace, record):
        """The hand-made role a mapping raised, again; never raised to it (someone lowered it by hand since)."""
        had = current[workspace.pk]
        if rank(had) <= rank(record.raised_from) or set_role(workspace, record.raised_from):
            record.delete()

    for workspace_id, (workspace, role) in wanted.items():
        had = current.get(workspace_id)
        record = records.get(workspace_id)
        if record is not None and record.raised_from:
            if rank(role) <= rank(record.raised_from):
                put_back(workspace, record)
            elif had != role:
                set_role(workspace, role)
        elif record is None and had is not None:
            # Made by hand or by an invitation: raised if a group gives more (the role it had is kept), never lowered.
            if rank(role) > rank(had) and set_role(workspace, role):
                ManagedMembership.objects.update_or_create(
                    provider=provider.slug, user=user, workspace=workspace, defaults={"raised_from": had}
                )
        else:
            if had != role:
                set_role(workspace, role)
            if record is None:
                ManagedMembership.objects.update_or_create(
                    provider=provider.slug, user=user, workspace=workspace, defaults={"raised_from": ""}
                )
    gone = set(records) - set(wanted)
    for workspace in Workspace.objects.filter(pk__in=gone) if gone else []:
        record = records[workspace.pk]
        if record.raised_from:
            put_back(workspace, record)
        elif services.remove_from_directory(user, workspace):
            changes.append(f"{workspace.slug} removed")
            record.delete()
        else:
            log.warning("sso: %s stays owner of %s: a workspace keeps one owner", user.email, workspace.slug)
    return changes


def _remember_sign_out_origin(request, slug):
    """The provider's sign-out origin, for the sign-out form's form-action (sso.middleware)."""
    from sso.middleware import SESSION_FORM_ACTION, origin
    from sso.provider import CompanyOIDCAdapter

    try:
        endpoint = CompanyOIDCAdapter(request, slug).openid_config.get("end_session_endpoint")
    except Exception:  # the discovery document was read moments ago; without it there is no provider sign-out
        endpoint = None
    found = origin(endpoint)
    if found:
        request.session[SESSION_FORM_ACTION] = [found]
