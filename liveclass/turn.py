"""Short-lived TURN credentials from a shared secret: coturn's `use-auth-secret` ("TURN REST API") scheme.

LiveClass and coturn share one secret (coturn's `static-auth-secret`, LiveClass's `LIVECLASS_TURN_SECRET`).
For every join, LiveClass makes a credential that only it and coturn can make, and that expires by itself:

    username   = f"{expiry}:{opaque}"       expiry: Unix time (seconds) after which coturn refuses it
    credential = base64(HMAC-SHA1(secret, username))

coturn recomputes the credential from the username it is given, with the same secret, and refuses it
once `expiry` is in the past (at allocation and at every refresh of the allocation, which is why the
lifetime must cover a whole period). Nobody needs to store anything: no TURN user database, no password
every student can read and pass on; a leaked credential stops working by itself.

The secret itself never leaves the server: it is not in the join answer, in logs or in reprs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from liveclass.api.schemas import IceServerOut
from liveclass.config import Settings


def credential(secret: str, username: str) -> str:
    """The TURN password coturn expects for `username`: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def pseudonym(server_secret: str, account_id: int) -> str:
    """The opaque part of the username: a keyed hash of the internal account id.

    coturn writes usernames to its log and the username travels in clear in every TURN request, so it
    must not carry the personal ID (CCCD) or the name: these are children's personal data. A plain hash
    of the account id would not do either, since ids are small integers anyone can hash in turn; the
    HMAC is keyed with LiveClass's own secret key, which the TURN server's operator does not hold.

    Why not a random token per join: the pseudonym is stable per account, and coturn counts its
    `user-quota` on the part of the username after the expiry. A random token would give a student a
    fresh quota at every join (checked: tests/test_turn.py); this one caps a person's relays whatever
    they do. It also lets the school tell from coturn's log that two relays were one person's, and
    LiveClass (only it) can say whose by computing it again for an account.
    """
    digest = hmac.new(
        server_secret.encode("utf-8"), f"liveclass-turn:{account_id}".encode("ascii"), hashlib.sha256
    ).hexdigest()
    return digest[:20]  # 80 bits: no collisions among a school's accounts, short in coturn's log


def ice_server(settings: Settings, account_id: int, now: float | None = None) -> IceServerOut | None:
    """The TURN entry of a join answer for this account, or None when TURN is not configured."""
    if not settings.turn_urls or settings.turn_secret is None:
        return None
    expiry = int(now if now is not None else time.time()) + settings.turn_credential_seconds
    username = f"{expiry}:{pseudonym(settings.secret_key, account_id)}"
    return IceServerOut(
        urls=list(settings.turn_urls),
        username=username,
        credential=credential(settings.turn_secret.get_secret_value(), username),
    )
