"""Step 6, `manifest` (with `--image`): `HEAD /v2/<repository>/manifests/<tag|digest>`.

Asked with the manifest types containerd accepts and the authorization `auth` got (a
token scoped to the repository for Bearer); a 200 gives the digest, a 404 looks at the
repository's tags to tell a wrong tag from a wrong path.
"""

from __future__ import annotations

from typing import Any

from webhook.adapters.registry.challenge import parse_challenge
from webhook.adapters.registry.manifest import MANIFEST_ACCEPT
from webhook.tools.doctor.auth import _token, _who
from webhook.tools.doctor.lazy import httpx
from webhook.tools.doctor.options import _image_text
from webhook.tools.doctor.report import Step, _Fail
from webhook.tools.doctor.session import Session


def check_manifest(s: Session) -> Step:
    repository, reference = s.o.repository or "", s.o.reference or ""
    shown = _image_text(repository, reference)
    headers = {"Accept": MANIFEST_ACCEPT, **_authorization(s, repository)}
    response = s.checked(
        "HEAD", s.url(f"/v2/{repository}/manifests/{reference}"), headers)
    code = response.status_code
    facts: dict[str, Any] = {"status": code, "repository": repository,
                             "reference": reference}
    if code == 200:
        digest = response.headers.get("docker-content-digest")
        media = response.headers.get("content-type", "?").split(";")[0]
        facts.update(digest=digest, media_type=media)
        return Step("manifest", True, f"{shown} is there: digest {digest or '(not sent)'}, "
                    f"{media}", facts=facts)
    if code == 404:
        notes = _tags_note(s, repository, headers)
        raise _Fail(f"manifest unknown: {s.t.registry} has no {shown}",
                    "push the image, or correct the reference (repository path, tag or "
                    "digest; for a mirror, its namespace)", notes, facts)
    if code in (401, 403):
        challenge = parse_challenge(response.headers.get_list("www-authenticate"))
        error = challenge[1].get("error", "") if challenge else ""
        status = f"{code}{' ' + error if error else ''}"
        if s.o.credentials is None:
            raise _Fail(f"{repository} needs credentials ({status})",
                        "give the pod a pull secret for it (imagePullSecrets); check "
                        "here with --creds FILE", facts=facts)
        raise _Fail(f"{_who(s)} may not pull {repository} ({status})",
                    "grant the account pull (read) access to the repository",
                    facts=facts)
    raise _Fail(f"HEAD {shown} → {code} {response.reason_phrase}",
                "the registry is not healthy: look at its logs", facts=facts)


def _authorization(s: Session, repository: str) -> dict[str, str]:
    if s.basic is not None:
        return {"Authorization": s.basic}
    if s.challenge is not None and s.challenge[0] == "bearer":
        return {"Authorization": f"Bearer {_token(s, f'repository:{repository}:pull')}"}
    return {}


def _tags_note(s: Session, repository: str, headers: dict[str, str]) -> list[str]:
    try:
        response = s.request("GET", s.url(f"/v2/{repository}/tags/list"),
                             {k: v for k, v in headers.items() if k != "Accept"})
    except httpx.HTTPError:
        return []
    if response.status_code == 404:
        return [f"the repository {repository} is unknown too: check the path"]
    try:
        tags = response.json().get("tags") or [] if response.status_code == 200 else None
    except (ValueError, AttributeError):
        tags = None
    if not isinstance(tags, list):
        return []
    listed = ", ".join(str(t) for t in tags[:10]) + (", ..." if len(tags) > 10 else "")
    return [f"the repository {repository} exists; its tags: {listed or '(none)'}"]
