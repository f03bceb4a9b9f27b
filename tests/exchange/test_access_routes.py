"""The access matrix: every API route and every page x every role, with the expected status.

One row per route and method, with six expected statuses, one per role (column):

    anon    anonymous: no token, no session
    bob     a buyer, who bought Rita's work on his device
    carol   another buyer
    rita    a rights holder
    rob     another rights holder
    admin   the platform admin (staff)

The objects in the paths belong to Bob (purchase, licence, top-up, device, token) or to
Rita (the work on sale, a draft still being processed, its web seed, a trace report), so
Carol's and Rob's columns try other people's objects.

The statuses are the access policy (docs/API.md, docs/THREAT_MODEL.md) written down, never
computed from the code: the API answers 401 to an anonymous caller where it needs a user,
404 for another user's private object (its existence is not disclosed), 403 for a work
one may see but not manage, and 403 for what only admins or only rights holders may do.
A portal page sends an anonymous visitor to the login page (``LOGIN``) and otherwise
answers as the API does; the Django admin sends everyone but staff to its own login page
(``ADMIN_LOGIN``). Every API error has the error shape.

The tables are checked against the URL configuration: a route (API or page) or an API
method without a row fails, and so does a row for a route or method that is gone. The
world is built once for the module, in a transaction rolled back at its end; each request
runs in its own savepoint, so no row sees another's writes.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, TestCase, override_settings
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from licensing.core.device import DeviceKeys
from tests.conftest import PASSWORD, png_bytes
from tests.exchange.compute_market.support import EMPTY_COMMAND

ROLES = ("anon", "bob", "carol", "rita", "rob", "admin")
LOGIN = "login"  # 302 to the portal's login page, coming back here after
ADMIN_LOGIN = "admin login"  # 302 to the Django admin's login page

Expected = int | str
Row = tuple[str, str, Expected, Expected, Expected, Expected, Expected, Expected]

# Placeholders: {work} Rita's work on sale; {draft} Rita's work still being processed;
# {seed} a web seed of {work}; {trace} Rita's trace report; {purchase}, {licence},
# {topup}, {device}, {token} Bob's ({licence} is for a sealed picture, the default for
# images, so it has a table); {month} this month.
API: list[Row] = [
    # method   path                                             anon   bob   carol rita  rob   admin
    ("GET",    "/api/v1/schema/",                               200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/docs/",                                 200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/redoc/",                                200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/me/",                                   401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/auth/tokens/",                          401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/auth/tokens/",                          201,   201,  201,  201,  201,  201),
    ("DELETE", "/api/v1/auth/tokens/{token}/",                  401,   204,  404,  404,  404,  404),
    # works: anyone sees those on sale; only the owner manages them
    ("GET",    "/api/v1/works/",                                200,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/works/",                                401,   403,  403,  201,  201,  403),
    ("GET",    "/api/v1/works/{work}/",                         200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/works/{draft}/",                        404,   404,  404,  200,  404,  200),
    ("PATCH",  "/api/v1/works/{work}/",                         401,   403,  403,  200,  403,  403),
    ("DELETE", "/api/v1/works/{work}/",                         401,   405,  405,  405,  405,  405),
    ("PATCH",  "/api/v1/works/{draft}/",                        401,   404,  404,  200,  404,  403),
    ("POST",   "/api/v1/works/{work}/withdraw/",                401,   403,  403,  200,  403,  403),
    ("GET",    "/api/v1/works/{work}/preview/",                 200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/works/{draft}/preview/",                404,   404,  404,  404,  404,  404),
    ("GET",    "/api/v1/works/{work}/manifest/",                401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/works/{draft}/manifest/",               401,   404,  404,  409,  404,  409),
    ("GET",    "/api/v1/works/{work}/sources/",                 401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/works/{work}/web-seeds/",               401,   403,  403,  200,  403,  403),
    ("GET",    "/api/v1/works/{draft}/web-seeds/",              401,   404,  404,  200,  404,  403),
    ("POST",   "/api/v1/works/{work}/web-seeds/",               401,   403,  403,  201,  403,  403),
    ("DELETE", "/api/v1/works/{work}/web-seeds/{seed}/",        401,   403,  403,  204,  403,  403),
    # money: each user's own; the platform's statement is the admin's
    ("GET",    "/api/v1/wallet/",                               401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/wallet/topups/",                        401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/wallet/topups/",                        401,   201,  201,  201,  201,  201),
    ("GET",    "/api/v1/wallet/topups/{topup}/",                401,   200,  404,  404,  404,  404),
    ("GET",    "/api/v1/payouts/",                              401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/payouts/",                              401,   402,  402,  402,  402,  402),
    ("GET",    "/api/v1/statements/{month}/",                   401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/statements/{month}/?party=platform",    401,   403,  403,  403,  403,  200),
    ("GET",    "/api/v1/statements/{month}.csv",                401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/statements/{month}.csv?party=platform", 401,   403,  403,  403,  403,  200),
    ("GET",    "/api/v1/purchases/",                            401,   200,  200,  200,  200,  200),
    # buying with Bob's device: only Bob may; his own work Rita may not buy at all
    ("POST",   "/api/v1/purchases/",                            401,   201,  400,  409,  400,  400),
    ("GET",    "/api/v1/purchases/{purchase}/",                 401,   200,  404,  404,  404,  404),
    ("GET",    "/api/v1/purchases/{purchase}/invoice/",         401,   200,  404,  404,  404,  404),
    ("POST",   "/api/v1/payments/webhooks/testpay/",            401,   401,  401,  401,  401,  401),
    # devices, licences, metering, peers
    ("GET",    "/api/v1/devices/",                              401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/devices/",                              401,   201,  201,  201,  201,  201),
    ("POST",   "/api/v1/devices/{device}/revoke/",              401,   200,  404,  404,  404,  404),
    ("GET",    "/api/v1/licences/",                             401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/licences/{licence}/",                   401,   200,  404,  404,  404,  404),
    ("POST",   "/api/v1/licences/{licence}/receipt/",           401,   400,  404,  404,  404,  404),
    ("GET",    "/api/v1/licences/{licence}/table/",             401,   200,  404,  404,  404,  404),
    # one library on every device (part: library): Bob's licence to his other device
    # {lib_desktop}; anyone else's licence is not found
    ("POST",   "/api/v1/licences/{licence}/devices/",           401,   201,  404,  404,  404,  404),
    ("POST",   "/api/v1/licences/{licence}/move/",              401,   201,  404,  404,  404,  404),
    ("GET",    "/api/v1/library/",                              401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/metering/orders/",                      401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/revocations/",                          200,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/revocations/equivocations/",            401,   400,  400,  400,  400,  400),
    ("POST",   "/api/v1/peers/announce/",                       401,   200,  400,  400,  400,  400),
    ("POST",   "/api/v1/peers/heartbeat/",                      401,   200,  400,  400,  400,  400),
    # not offered without the live index (tests/exchange/test_index_credentials.py has
    # the offered case from each side)
    ("POST",   "/api/v1/peers/index-credential/",               401,   404,  404,  404,  404,  404),
    ("POST",   "/api/v1/peers/index-credential/revoke/",        401,   204,  204,  204,  204,  204),
    # tracing: rights holders only, and a report is its owner's alone
    ("GET",    "/api/v1/traces/",                               401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/traces/",                               401,   403,  403,  201,  201,  403),
    ("GET",    "/api/v1/traces/{trace}/",                       401,   404,  404,  200,  404,  404),
    # compute: a job and its module are the customer's (Bob's); devices are their owner's
    ("POST",   "/api/v1/compute/modules/",                      401,   201,  201,  201,  201,  201),
    ("GET",    "/api/v1/compute/modules/{module}/",             401,   200,  404,  404,  404,  404),
    ("GET",    "/api/v1/compute/jobs/",                         401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/compute/jobs/",                         401,   201,  402,  402,  402,  402),
    ("GET",    "/api/v1/compute/jobs/{job}/",                   401,   200,  404,  404,  404,  404),
    ("POST",   "/api/v1/compute/jobs/{job}/cancel/",            401,   200,  404,  404,  404,  404),
    ("GET",    "/api/v1/compute/jobs/{job}/units/",             401,   200,  404,  404,  404,  404),
    ("GET",    "/api/v1/compute/jobs/{job}/units/0/output/",    401,   404,  404,  404,  404,  404),
    ("GET",    "/api/v1/compute/jobs/{job}/results.zip",        401,   200,  404,  404,  404,  404),
    ("GET",    "/api/v1/compute/contributors/",                 401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/compute/contributors/",                 401,   200,  400,  400,  400,  400),
    ("POST",   "/api/v1/compute/dispatch/",                     401,   409,  400,  400,  400,  400),
    ("POST",   "/api/v1/compute/results/",                      401,   200,  400,  400,  400,  400),
    # reviews (part: reviews): {rv_review} is Bob's review of Rita's work, with her reply.
    # Bob reviewed it already (409); nobody else holds a licence for it (403); only the
    # work's owner replies; only staff moderate, and the review is not hidden (restore 409)
    ("GET",    "/api/v1/works/{work}/reviews/",                 200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/works/{draft}/reviews/",                404,   404,  404,  200,  404,  200),
    ("POST",   "/api/v1/works/{work}/reviews/",                 401,   409,  403,  403,  403,  403),
    ("GET",    "/api/v1/reviews/{rv_review}/",                  200,   200,  200,  200,  200,  200),
    ("PATCH",  "/api/v1/reviews/{rv_review}/",                  401,   200,  403,  403,  403,  403),
    ("DELETE", "/api/v1/reviews/{rv_review}/",                  401,   204,  403,  403,  403,  403),
    ("PUT",    "/api/v1/reviews/{rv_review}/reply/",            401,   403,  403,  200,  403,  403),
    ("DELETE", "/api/v1/reviews/{rv_review}/reply/",            401,   403,  403,  204,  403,  403),
    ("POST",   "/api/v1/reviews/{rv_review}/reports/",          401,   403,  201,  201,  201,  201),
    ("POST",   "/api/v1/reviews/{rv_review}/hide/",             401,   403,  403,  403,  403,  200),
    ("POST",   "/api/v1/reviews/{rv_review}/restore/",          401,   403,  403,  403,  403,  409),
    # community (part: community): follows, feed, notifications, saved searches, public
    # pages. {cm_search} is Bob's saved search; Bob's collection is private (404 for all,
    # as for nobody), Rob's is public; nobody follows anyone, and Rita cannot follow herself
    ("GET",    "/api/v1/follows/",                              401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/follows/",                              401,   201,  201,  400,  201,  201),
    ("DELETE", "/api/v1/follows/rita/",                         401,   204,  204,  204,  204,  204),
    ("GET",    "/api/v1/feed/",                                 401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/notifications/",                        401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/notifications/unread-count/",           401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/notifications/read/",                   401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/notifications/switches/",               401,   200,  200,  200,  200,  200),
    ("PATCH",  "/api/v1/notifications/switches/",               401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/saved-searches/",                       401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/saved-searches/",                       401,   201,  201,  201,  201,  201),
    ("DELETE", "/api/v1/saved-searches/{cm_search}/",           401,   204,  404,  404,  404,  404),
    ("GET",    "/api/v1/members/rita/",                         200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/members/nobody/",                       404,   404,  404,  404,  404,  404),
    ("GET",    "/api/v1/members/bob/collection/",               404,   404,  404,  404,  404,  404),
    ("GET",    "/api/v1/members/rob/collection/",               200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/me/profile/",                           401,   200,  200,  200,  200,  200),
    ("PATCH",  "/api/v1/me/profile/",                           401,   200,  200,  200,  200,  200),
    # messages (part: messaging): Bob wrote to Rita in {pm_conversation}; {pm_message} is
    # his message, which only Rita (its recipient) marks read or reports; Bob blocked Rob
    ("GET",    "/api/v1/messages/",                             401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/messages/",                             401,   201,  201,  400,  201,  201),
    ("GET",    "/api/v1/messages/unread/",                      401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/messages/conversations/",               401,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/messages/conversations/{pm_conversation}/",
                                                                401,   200,  404,  200,  404,  404),
    ("POST",   "/api/v1/messages/{pm_message}/read/",           401,   403,  404,  200,  404,  404),
    ("POST",   "/api/v1/messages/{pm_message}/reports/",        401,   403,  404,  201,  404,  404),
    ("GET",    "/api/v1/blocks/",                               401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/blocks/",                               401,   201,  400,  201,  201,  201),
    ("DELETE", "/api/v1/blocks/{pm_blocked}/",                  401,   204,  404,  404,  404,  404),
    # direct messages (part: direct messages): Rita's device sealed {dm_relayed} to Bob's
    # laptop; {dm_document} is another envelope her device signed, which only she may relay;
    # Bob asking his own devices is writing to himself (400); Bob blocked Rob (403)
    ("GET",    "/api/v1/members/bob/devices/",                  401,   400,  200,  200,  403,  200),
    ("GET",    "/api/v1/messages/relayed/",                     401,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/messages/relayed/",                     401,   400,  400,  201,  400,  400),
    ("DELETE", "/api/v1/messages/relayed/{dm_relayed}/",        401,   204,  404,  404,  404,  404),
    # chat rooms (part: rooms): a work's room is as public as the work; its owner (Rita)
    # and staff moderate it; a rights holder's room is open to all
    ("GET",    "/api/v1/rooms/work/{work}/",                    200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/rooms/work/{draft}/",                   404,   404,  404,  200,  404,  200),
    ("PATCH",  "/api/v1/rooms/work/{work}/",                    401,   403,  403,  200,  403,  200),
    ("GET",    "/api/v1/rooms/work/{work}/messages/",           200,   200,  200,  200,  200,  200),
    ("POST",   "/api/v1/rooms/work/{work}/mutes/",              401,   403,  403,  201,  403,  201),
    ("POST",   "/api/v1/rooms/work/{work}/kicks/",              401,   403,  403,  201,  403,  201),
    ("GET",    "/api/v1/rooms/member/rita/",                    200,   200,  200,  200,  200,  200),
    ("GET",    "/api/v1/rooms/member/bob/messages/",            404,   404,  404,  404,  404,  404),
]  # fmt: skip

PAGES: list[Row] = [
    # method   path                                             anon   bob   carol rita  rob   admin
    ("GET",    "/",                                             200,   200,  200,  200,  200,  200),
    ("GET",    "/healthz",                                      200,   200,  200,  200,  200,  200),
    ("GET",    "/.well-known/jwks.json",                        200,   200,  200,  200,  200,  200),
    ("GET",    "/signup/",                                      200,   200,  200,  200,  200,  200),
    ("POST",   "/signup/",                                      302,   302,  302,  302,  302,  302),
    ("GET",    "/login/",                                       200,   200,  200,  200,  200,  200),
    ("POST",   "/login/",                                       200,   200,  200,  200,  200,  200),
    ("GET",    "/logout/",                                      405,   405,  405,  405,  405,  405),
    ("POST",   "/logout/",                                      302,   302,  302,  302,  302,  302),
    ("GET",    "/works/{work}/",                                200,   200,  200,  200,  200,  200),
    ("GET",    "/works/{draft}/",                               404,   404,  404,  200,  404,  200),
    ("GET",    "/catalogue/",                                   200,   200,  200,  200,  200,  200),
    ("GET",    "/get-the-agent/",                               200,   200,  200,  200,  200,  200),
    ("GET",    "/get-the-agent/no-such-agent.whl",              404,   404,  404,  404,  404,  404),
    ("POST",   "/i18n/setlang/",                                302,   302,  302,  302,  302,  302),
    # buying on the web (a refusal, such as Rita's own work or Carol's use of Bob's
    # device, is a message on the work's page); the library's devices are one's own
    ("GET",    "/works/{work}/buy/",                            LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/works/{work}/buy/",                            LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/devices/{device}/revoke/",                     LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/devices/{device}/revoke/",                     LOGIN, 302,  404,  404,  404,  404),
    # one library on every device (part: library): Bob's licence, from the library page
    ("GET",    "/licences/{licence}/devices/",                  LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/licences/{licence}/devices/",                  LOGIN, 302,  404,  404,  404,  404),
    ("GET",    "/licences/{licence}/move/",                     LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/licences/{licence}/move/",                     LOGIN, 302,  404,  404,  404,  404),
    # the studio: rights holders' own works, sales and traces
    ("GET",    "/studio/works/",                                LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/studio/works/new/",                            LOGIN, 403,  403,  200,  200,  403),
    ("POST",   "/studio/works/new/",                            LOGIN, 403,  403,  302,  302,  403),
    ("GET",    "/studio/works/{work}/edit/",                    LOGIN, 403,  403,  200,  403,  403),
    ("POST",   "/studio/works/{work}/edit/",                    LOGIN, 403,  403,  302,  403,  403),
    ("GET",    "/studio/works/{draft}/edit/",                   LOGIN, 404,  404,  200,  404,  403),
    ("GET",    "/studio/sales/",                                LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/studio/sales/works.csv",                       LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/studio/trace/",                                LOGIN, 403,  403,  200,  200,  403),
    ("POST",   "/studio/trace/",                                LOGIN, 403,  403,  302,  302,  403),
    ("GET",    "/studio/trace/{trace}/",                        LOGIN, 403,  403,  200,  404,  403),
    # money
    ("GET",    "/wallet/",                                      LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/wallet/topup/",                                LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/wallet/topup/",                                LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/wallet/payout/",                               LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/wallet/payout/",                               LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/statements/{month}/",                          LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/purchases/",                                   LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/purchases/{purchase}/invoice/",                LOGIN, 200,  404,  404,  404,  404),
    # compute: Bob's job is his alone; the forms refuse the others for want of a wallet
    ("GET",    "/compute/",                                     LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/compute/render/",                              LOGIN, 200,  200,  200,  200,  200),
    ("POST",   "/compute/render/",                              LOGIN, 302,  400,  400,  400,  400),
    ("GET",    "/compute/upload/",                              LOGIN, 200,  200,  200,  200,  200),
    ("POST",   "/compute/upload/",                              LOGIN, 400,  400,  400,  400,  400),
    ("GET",    "/compute/contribute/",                          LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/compute/jobs/{job}/",                          LOGIN, 200,  404,  404,  404,  404),
    ("GET",    "/compute/jobs/{job}/picture.png",               LOGIN, 404,  404,  404,  404,  404),
    ("GET",    "/compute/jobs/{job}/results.zip",               LOGIN, 200,  404,  404,  404,  404),
    ("GET",    "/compute/jobs/{job}/units/0/output",            LOGIN, 404,  404,  404,  404,  404),
    ("GET",    "/compute/jobs/{job}/cancel/",                   LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/compute/jobs/{job}/cancel/",                   LOGIN, 302,  404,  404,  404,  404),
    ("GET",    "/dashboard/",                                   LOGIN, 403,  403,  403,  403,  200),
    ("POST",   "/dashboard/payouts/00000000-0000-0000-0000-000000000000/retry/",
                                                                LOGIN, 403,  403,  403,  403,  404),
    # reviews (part: reviews): a refusal on the work's page is a message there (302);
    # another member's review is a 403 page to change, the work owner's alone to reply to
    ("GET",    "/works/{work}/reviews/",                        LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/works/{work}/reviews/",                        LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/reviews/{rv_review}/edit/",                    LOGIN, 200,  403,  403,  403,  403),
    ("POST",   "/reviews/{rv_review}/edit/",                    LOGIN, 302,  403,  403,  403,  403),
    ("GET",    "/reviews/{rv_review}/delete/",                  LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/reviews/{rv_review}/delete/",                  LOGIN, 302,  403,  403,  403,  403),
    ("GET",    "/reviews/{rv_review}/reply/",                   LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/reviews/{rv_review}/reply/",                   LOGIN, 403,  403,  302,  403,  403),
    ("GET",    "/reviews/{rv_review}/reply/delete/",            LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/reviews/{rv_review}/reply/delete/",            LOGIN, 403,  403,  302,  403,  403),
    ("GET",    "/reviews/{rv_review}/report/",                  LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/reviews/{rv_review}/report/",                  LOGIN, 302,  302,  302,  302,  302),
    # community (part: community): one's own feed, notifications, wishlist and profile;
    # the public pages as in the API
    ("GET",    "/feed/",                                        LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/notifications/",                               LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/notifications/read/",                          LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/notifications/read/",                          LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/notifications/settings/",                      LOGIN, 200,  200,  200,  200,  200),
    ("POST",   "/notifications/settings/",                      LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/wishlist/",                                    LOGIN, 200,  200,  200,  200,  200),
    ("POST",   "/wishlist/",                                    LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/wishlist/{cm_search}/delete/",                 LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/wishlist/{cm_search}/delete/",                 LOGIN, 302,  404,  404,  404,  404),
    ("GET",    "/members/rita/",                                200,   200,  200,  200,  200,  200),
    ("GET",    "/members/nobody/",                              404,   404,  404,  404,  404,  404),
    ("GET",    "/members/rita/follow/",                         LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/members/rita/follow/",                         LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/members/bob/collection/",                      404,   404,  404,  404,  404,  404),
    ("GET",    "/members/rob/collection/",                      200,   200,  200,  200,  200,  200),
    ("GET",    "/profile/",                                     LOGIN, 200,  200,  200,  200,  200),
    ("POST",   "/profile/",                                     LOGIN, 302,  302,  302,  302,  302),
    # messages (part: messaging): a refusal on a form is the form again (400) or a message
    # on the page it came from (302); another member's thread and message are not found
    ("GET",    "/messages/",                                    LOGIN, 200,  200,  200,  200,  200),
    ("GET",    "/messages/new/",                                LOGIN, 200,  200,  200,  200,  200),
    ("POST",   "/messages/new/",                                LOGIN, 302,  302,  400,  302,  302),
    ("GET",    "/messages/blocks/",                             LOGIN, 200,  200,  200,  200,  200),
    ("POST",   "/messages/blocks/",                             LOGIN, 302,  302,  302,  302,  302),
    ("GET",    "/messages/blocks/{pm_blocked}/remove/",         LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/messages/blocks/{pm_blocked}/remove/",         LOGIN, 302,  404,  404,  404,  404),
    ("GET",    "/messages/{pm_conversation}/",                  LOGIN, 200,  404,  200,  404,  404),
    ("POST",   "/messages/{pm_conversation}/",                  LOGIN, 302,  404,  302,  404,  404),
    ("GET",    "/messages/report/{pm_message}/",                LOGIN, 405,  405,  405,  405,  405),
    ("POST",   "/messages/report/{pm_message}/",                LOGIN, 302,  404,  302,  404,  404),
    # chat rooms (part: rooms): anyone reads a public room; its moderators save its rules
    ("GET",    "/rooms/work/{work}/",                           200,   200,  200,  200,  200,  200),
    ("GET",    "/rooms/work/{draft}/",                          404,   404,  404,  200,  404,  200),
    ("POST",   "/rooms/work/{work}/",                           LOGIN, 403,  403,  302,  403,  302),
    ("GET",    "/rooms/member/rita/",                           200,   200,  200,  200,  200,  200),
    ("GET",    "/rooms/member/bob/",                            404,   404,  404,  404,  404,  404),
]  # fmt: skip

# The Django admin, as one family: staff only. The completeness check leaves admin/ out.
ADMIN_PAGES: list[Row] = [
    ("GET",    "/admin/",                                       *[ADMIN_LOGIN] * 5,            200),
    ("GET",    "/admin/purchases/purchase/",                    *[ADMIN_LOGIN] * 5,            200),
    ("GET",    "/admin/purchases/purchase/{purchase}/change/",  *[ADMIN_LOGIN] * 5,            200),
    ("GET",    "/admin/compute_market/computejob/",             *[ADMIN_LOGIN] * 5,            200),
    ("GET",    "/admin/compute_market/computejob/{job}/change/", *[ADMIN_LOGIN] * 5,           200),
    ("GET",    "/admin/reviews/review/",                        *[ADMIN_LOGIN] * 5,            200),
    ("GET",    "/admin/reviews/report/",                        *[ADMIN_LOGIN] * 5,            200),
    ("GET",    "/admin/messaging/messagereport/",               *[ADMIN_LOGIN] * 5,            200),
    ("GET",    "/admin/login/",                                 200,   200,  200,  200,  200,  302),
]  # fmt: skip

# --- the bodies of write requests: plausible, so a refusal is about who asks ----------

PNG, TEXT, WASM = object(), object(), object()  # fresh uploads: a picture, text, a module
_DEVICE = DeviceKeys.generate().public.to_b64url()
_WORK_FIELDS = {"title": "New", "price_minor": 300, "currency": "EUR"}

# "{work}" and the like in a value are filled from the world
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/auth/tokens/"): {"username": "bob", "password": PASSWORD,
                                       "name": "script"},
    ("POST", "/api/v1/works/"): {"file": PNG, **_WORK_FIELDS},
    ("PATCH", "/api/v1/works/{work}/"): {"price_minor": 900},
    ("PATCH", "/api/v1/works/{draft}/"): {"price_minor": 900},
    ("POST", "/api/v1/works/{work}/web-seeds/"): {"url": "https://mirror2.example/w"},
    ("POST", "/api/v1/wallet/topups/"): {"amount_minor": 500, "currency": "EUR"},
    ("POST", "/api/v1/payouts/"): {"amount_minor": 2000, "currency": "EUR",
                                   "account": "earnings"},
    ("POST", "/api/v1/purchases/"): {"work": "{work}", "device": "{device}"},
    ("POST", "/api/v1/devices/"): {"name": "tablet", "signing_key": _DEVICE["sig"],
                                   "kem_key": _DEVICE["kem"]},
    ("POST", "/api/v1/licences/{licence}/receipt/"): {"receipt": "not.a.receipt"},
    ("POST", "/api/v1/metering/orders/"): {"orders": ["not.an.order"]},
    ("POST", "/api/v1/revocations/equivocations/"): {"first": "a.b.c", "second": "d.e.f"},
    ("POST", "/api/v1/peers/announce/"): {"device": "{device}", "host": "127.0.0.1",
                                          "port": 6881, "holdings": []},
    ("POST", "/api/v1/peers/heartbeat/"): {"device": "{device}"},
    ("POST", "/api/v1/peers/index-credential/"): {"device": "{device}"},
    ("POST", "/api/v1/peers/index-credential/revoke/"): {"token": "pmi1.not.genuine"},
    ("POST", "/api/v1/traces/"): {"file": TEXT},
    ("POST", "/api/v1/compute/modules/"): {"module": WASM},
    ("POST", "/api/v1/compute/jobs/"): {"name": "job", "module": "{module}", "currency": "EUR",
                                        "price_per_tfuel_minor": 1000,
                                        "units": [{"input": "", "fuel": 10**9}]},
    ("POST", "/api/v1/compute/contributors/"): {"device": "{device}", "runtime": "rt"},
    ("POST", "/api/v1/compute/dispatch/"): {"device": "{device}"},
    ("POST", "/api/v1/compute/results/"): {"device": "{device}", "results": [
        {"assignment": 1, "token": "not.a.result", "output": ""}]},
    ("POST", "/signup/"): {"username": "newcomer", "email": "new@example.test",
                           "password1": PASSWORD, "password2": PASSWORD, "role": "buyer"},
    ("POST", "/login/"): {"username": "bob", "password": "not the password"},
    ("POST", "/studio/works/new/"): {"file": PNG, "title": "New", "price": "3.00",
                                     "currency": "EUR", "allowed_uses": ["view"],
                                     "licence_days": 30, "byte_allowance_multiple": 2},
    ("POST", "/works/{work}/buy/"): {"once": "form-3", "device": "{device}",
                                     "expected_price_minor": 500, "expected_currency": "EUR"},
    ("POST", "/i18n/setlang/"): {"language": "ko", "next": "/catalogue/"},
    ("POST", "/compute/render/"): {"once": "form-4", "width": "16", "height": "16", "tile": "16",
                                   "samples": "1", "price": "1.00", "currency": "EUR",
                                   "replication": "2"},
    ("POST", "/compute/upload/"): {"once": "form-5", "price": "1.00", "currency": "EUR"},
    ("POST", "/studio/works/{work}/edit/"): {"withdraw": "1"},
    ("POST", "/studio/trace/"): {"file": TEXT},
    ("POST", "/wallet/topup/"): {"once": "form-1", "amount": "5", "currency": "EUR"},
    ("POST", "/wallet/payout/"): {"once": "form-2", "amount": "20", "currency": "EUR",
                                  "account": "earnings"},
    # reviews (part: reviews)
    ("POST", "/api/v1/works/{work}/reviews/"): {"rating": 4, "body": "A <i>fine</i> print"},
    ("PATCH", "/api/v1/reviews/{rv_review}/"): {"rating": 3},
    ("PUT", "/api/v1/reviews/{rv_review}/reply/"): {"body": "Thanks again"},
    ("POST", "/api/v1/reviews/{rv_review}/reports/"): {"reason": "spam"},
    ("POST", "/api/v1/reviews/{rv_review}/hide/"): {"reason": "off topic"},
    ("POST", "/api/v1/reviews/{rv_review}/restore/"): {"reason": "fair after all"},
    ("POST", "/works/{work}/reviews/"): {"once": "form-rv-1", "rating": "4", "body": "Nice"},
    ("POST", "/reviews/{rv_review}/edit/"): {"once": "form-rv-2", "rating": "3", "body": "Ok"},
    ("POST", "/reviews/{rv_review}/delete/"): {"once": "form-rv-3"},
    ("POST", "/reviews/{rv_review}/reply/"): {"once": "form-rv-4", "body": "Thanks again"},
    ("POST", "/reviews/{rv_review}/reply/delete/"): {"once": "form-rv-5"},
    ("POST", "/reviews/{rv_review}/report/"): {"once": "form-rv-6", "reason": "spam"},
    # community (part: community)
    ("POST", "/api/v1/follows/"): {"username": "rita"},
    ("POST", "/api/v1/notifications/read/"): {"all": True},
    ("PATCH", "/api/v1/notifications/switches/"): {"switches": {"message": {"email": False}}},
    ("POST", "/api/v1/saved-searches/"): {"query": "harbour"},
    ("PATCH", "/api/v1/me/profile/"): {"bio": "Hello"},
    ("POST", "/notifications/settings/"): {"message.portal": "on"},
    ("POST", "/wishlist/"): {"query": "harbour"},
    ("POST", "/members/rita/follow/"): {"action": "follow"},
    ("POST", "/profile/"): {"bio": "Hello"},
    # one library on every device (part: library)
    ("POST", "/api/v1/licences/{licence}/devices/"): {"device": "{lib_desktop}"},
    ("POST", "/api/v1/licences/{licence}/move/"): {"to_device": "{lib_desktop}"},
    ("POST", "/licences/{licence}/devices/"): {"once": "form-lib-1", "device": "{lib_desktop}"},
    ("POST", "/licences/{licence}/move/"): {"once": "form-lib-2", "device": "{lib_desktop}"},
    # messages (part: messaging)
    ("POST", "/api/v1/messages/"): {"to": "rita", "body": "Is there an <b>A3</b> print?"},
    ("POST", "/api/v1/messages/{pm_message}/reports/"): {"reason": "spam"},
    ("POST", "/api/v1/blocks/"): {"username": "carol"},
    # direct messages (part: direct messages)
    ("POST", "/api/v1/messages/relayed/"): {"document": "{dm_document}"},
    ("POST", "/messages/new/"): {"once": "form-pm-1", "to": "rita", "body": "Hello"},
    ("POST", "/messages/blocks/"): {"username": "carol"},
    ("POST", "/messages/{pm_conversation}/"): {"once": "form-pm-2", "body": "A reply"},
    ("POST", "/messages/report/{pm_message}/"): {"reason": "spam"},
    # chat rooms (part: rooms)
    ("PATCH", "/api/v1/rooms/work/{work}/"): {"slow_mode_seconds": 5},
    ("POST", "/api/v1/rooms/work/{work}/mutes/"): {"member": "carol", "minutes": 5},
    ("POST", "/api/v1/rooms/work/{work}/kicks/"): {"member": "carol", "minutes": 5},
    ("POST", "/rooms/work/{work}/"): {"slow_mode_seconds": "5"},
}


def _body(method: str, path: str, world: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in BODIES.get((method, path), {}).items():
        if value is PNG:
            body[name] = SimpleUploadedFile("upload.png", png_bytes(64, 48, seed=7),
                                            content_type="image/png")
        elif value is TEXT:
            body[name] = SimpleUploadedFile("copy.txt", b"a suspect copy, not a picture")
        elif value is WASM:
            body[name] = SimpleUploadedFile("job.wasm", EMPTY_COMMAND)
        else:
            body[name] = value.format(**world) if isinstance(value, str) else value
    return body


# --- the world: built once, rolled back at the end ----------------------------------

_TEST_SETTINGS: dict[str, Any] = {
    # as tests/conftest.py sets them for each test, here for building the world once
    "TEST_PAYMENTS": True,
    "PAYMENTS_PROVIDER": "testpay",
    "TESTPAY_DELIVERY": "inprocess",
    "TESTPAY_WEBHOOK_SECRET": "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXdlYmhvb2tzLTAxMjM0NTY=",
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
}


def _data_settings(data: Path) -> dict[str, Any]:
    return {"DATA_DIR": data, "MASTERS_DIR": data / "masters", "PREVIEWS_DIR": data / "previews",
            "CIPHERTEXT_DIR": data / "ciphertext", "UPLOAD_TMP_DIR": data / "tmp",
            "FILE_UPLOAD_TEMP_DIR": str(data / "tmp")}


def _build_world() -> dict[str, Any]:
    from exchange.accounts.models import Role, User
    from exchange.accounts.services import api_token_create
    from exchange.catalogue.services import work_register
    from exchange.compute_market.submission import JobSpec, UnitSpec, job_submit, module_store
    from exchange.licensing.services import device_register
    from exchange.payments.services import topup_create
    from exchange.peers.services import peer_announce, web_seed_add
    from exchange.purchases.services import purchase_create
    from exchange.tracing.services import trace_copy

    def person(name: str, role: str, **extra: Any) -> User:
        return User.objects.create_user(username=name, email=f"{name}@example.test",
                                        password=PASSWORD, role=role, **extra)

    people = {"bob": person("bob", Role.BUYER), "carol": person("carol", Role.BUYER),
              "rita": person("rita", Role.RIGHTS_HOLDER),
              "rob": person("rob", Role.RIGHTS_HOLDER),
              "admin": person("admin", Role.ADMIN, is_staff=True, is_superuser=True)}
    bob, rita = people["bob"], people["rita"]

    def work(title: str, *, ready: bool) -> Any:
        data = png_bytes(seed=len(title))
        with TestCase.captureOnCommitCallbacks(execute=ready):
            return work_register(
                owner=rita, title=title, description="", upload=io.BytesIO(data),
                upload_size=len(data), original_filename="work.png", price_minor=500,
                currency="EUR", allowed_uses=["view", "download"], licence_days=365,
                byte_allowance_multiple=2)

    on_sale, draft = work("Rita's harbour", ready=True), work("Rita's draft", ready=False)
    public = DeviceKeys.generate().public.to_b64url()
    device = device_register(user=bob, name="laptop", signing_key=public["sig"],
                             kem_key=public["kem"])
    with TestCase.captureOnCommitCallbacks(execute=True):
        topup_create(user=bob, amount_minor=10_000, currency="EUR")
    purchase = purchase_create(buyer=bob, work_id=on_sale.pk, device_id=device.device_id)
    module = module_store(user=bob, wasm=EMPTY_COMMAND)
    job = job_submit(customer=bob, spec=JobSpec(
        name="Bob's job", module_sha256=module.sha256, currency="EUR",
        price_per_tfuel_minor=1000, units=[UnitSpec(input=b"", fuel=10**9)]))
    peer_announce(user=bob, device_id=device.device_id, host="127.0.0.1", port=6881,
                  source="127.0.0.1", holdings=[], replace=True)
    # reviews (part: reviews): Bob reviews what he bought; Rita replies
    from exchange.reviews.services import reply_put, review_create

    rv_review = review_create(author=bob, work_id=on_sale.pk, rating=4, body="Calm.")
    reply_put(actor=rita, review_id=rv_review.pk, body="Thank you")
    # community (part: community): Bob's saved search; Rob's collection is public
    from exchange.community.models import MemberProfile, SavedSearch

    cm_search = SavedSearch.objects.create(owner=bob, query="lighthouse")
    MemberProfile.objects.create(user=people["rob"], collection_public=True)
    # one library on every device (part: library): Bob's second device
    lib_public = DeviceKeys.generate().public.to_b64url()
    lib_desktop = device_register(user=bob, name="desktop", signing_key=lib_public["sig"],
                                  kem_key=lib_public["kem"])
    # messages (part: messaging): Bob writes to Rita, and blocks Rob
    from exchange.messaging.services import member_block, message_send

    pm_message = message_send(sender=bob, to="rita", body="Hello Rita")
    member_block(blocker=bob, username="rob")
    # direct messages (part: direct messages): Rita's device seals two messages to Bob's
    # laptop; the platform relays the first
    from exchange.messaging.services import relayed_accept
    from licensing.core import DevicePublicKeys, new_message_id, seal_direct_message

    dm_keys = DeviceKeys.generate()
    dm_public = dm_keys.public.to_b64url()
    device_register(user=rita, name="studio", signing_key=dm_public["sig"],
                    kem_key=dm_public["kem"])
    bob_laptop = DevicePublicKeys.from_b64url(signing=public["sig"], kem=public["kem"])
    dm_sealed = [seal_direct_message(dm_keys, sender="rita", recipient="bob",
                                     recipient_device=bob_laptop,
                                     message_id=new_message_id(), body="Thanks, Bob",
                                     issued_at=int(timezone.now().timestamp()))
                 for _ in range(2)]
    dm_relayed, _created = relayed_accept(sender=rita, document=dm_sealed[0])
    sessions = {}
    for name, user in people.items():
        signing_in = Client()  # one each: signing in on a used client ends its session
        signing_in.force_login(user)
        sessions[name] = signing_in.session.session_key
    return {
        "tokens": {name: api_token_create(user=user, name="matrix").raw
                   for name, user in people.items()},
        "sessions": sessions,
        "work": str(on_sale.pk), "draft": str(draft.pk), "device": device.device_id,
        "purchase": str(purchase.pk), "licence": str(purchase.licence.pk),
        "topup": str(topup_create(user=bob, amount_minor=700, currency="EUR").pk),
        "token": api_token_create(user=bob, name="laptop").token.pk,
        "seed": web_seed_add(work=on_sale, actor=rita, url="https://mirror.example/w").pk,
        "trace": trace_copy(owner=rita, data=b"a suspect copy", name="copy.txt").pk,
        "month": timezone.now().strftime("%Y-%m"),
        "module": module.sha256, "job": str(job.pk),
        "rv_review": str(rv_review.pk),
        "cm_search": cm_search.pk,
        "pm_conversation": str(pm_message.conversation_id), "pm_message": str(pm_message.pk),
        "pm_blocked": "rob",
        "lib_desktop": lib_desktop.device_id,
        "dm_relayed": str(dm_relayed.pk), "dm_document": dm_sealed[1],
    }


@pytest.fixture(scope="module")
def built_world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[dict]:
    """Django's setUpTestData, for a pytest module: a class-wide transaction that each
    test's own (pytest-django) transaction nests in as a savepoint."""
    from exchange.licensing.keys import keyring_clear_cache

    class World(TestCase):
        pass

    data = tmp_path_factory.mktemp("access-world")
    for folder in ("masters", "previews", "ciphertext", "tmp"):
        (data / folder).mkdir()
    # A private cache: other runs' sign-ins must not throttle the anonymous rows.
    private_cache = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                 "LOCATION": "access-matrix"}}
    with django_db_blocker.unblock(), override_settings(CACHES=private_cache):
        World.setUpClass()
        try:
            with override_settings(**_TEST_SETTINGS, **_data_settings(data)):
                keyring_clear_cache()
                world = _build_world()
            yield {**world, "files": _data_settings(data)}
        finally:
            World.tearDownClass()
            World.doClassCleanups()
            keyring_clear_cache()


@pytest.fixture
def world(built_world, db, settings, _private_data_dir) -> dict[str, Any]:
    """The module's world, with this test's settings pointing at its data folder (the
    key-encryption key, masters, previews, pieces)."""
    for name in ("DATA_DIR", "MASTERS_DIR", "PREVIEWS_DIR", "CIPHERTEXT_DIR"):
        setattr(settings, name, built_world["files"][name])
    return built_world


@pytest.fixture(scope="module")
def _clients() -> dict[str, Any]:
    from rest_framework.test import APIClient

    # Two clients for the module: a new client loads the middleware again, and
    # WhiteNoise's scan of the static files would then be most of each row's time.
    return {"api": APIClient(), "page": Client()}


@pytest.fixture
def clients(_clients, world) -> Any:
    """The module's clients, made ``role``: a bearer token for the API, a session cookie
    for pages (both made with the world)."""

    def as_role(role: str) -> tuple[Any, Any]:
        api, page = _clients["api"], _clients["page"]
        api.credentials()
        for client in (api, page):
            client.cookies.clear()
        if role != "anon":
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {world['tokens'][role]}")
            page.cookies[django_settings.SESSION_COOKIE_NAME] = world["sessions"][role]
        return api, page

    return as_role


def _cases(rows: list[Row]) -> list[Any]:
    return [pytest.param(method, path, role, expected, id=f"{method} {path} as {role}")
            for method, path, *statuses in rows
            for role, expected in zip(ROLES, statuses, strict=True)]


# --- the matrix ------------------------------------------------------------------------

def _api_call(client: Any, method: str, path: str, values: dict[str, Any]) -> Any:
    url = path.format(**values)
    if method == "GET":
        return client.get(url)
    body = _body(method, path, values)
    upload = any(isinstance(value, SimpleUploadedFile) for value in body.values())
    return getattr(client, method.lower())(url, body, format="multipart" if upload else "json",
                                           HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))


@pytest.mark.parametrize(("method", "path", "role", "expected"), _cases(API))
def test_api(method, path, role, expected, world, clients) -> None:
    client, _page = clients(role)
    response = _api_call(client, method, path, world)
    assert response.status_code == expected, response.content[:300]
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}
        assert set(response.json()["error"]) == {"code", "message", "fields"}


@pytest.mark.parametrize(("method", "path", "role", "expected"), _cases(PAGES + ADMIN_PAGES))
def test_page(method, path, role, expected, world, clients) -> None:
    _api, client = clients(role)
    url = path.format(**world)
    response = client.post(url, _body(method, path, world)) if method == "POST" else client.get(url)
    if expected in (LOGIN, ADMIN_LOGIN):
        login = "/login/" if expected == LOGIN else "/admin/login/"
        assert response.status_code == 302
        assert response["Location"].startswith(f"{login}?next=")
        return
    assert response.status_code == expected, response.content[:300]
    if expected == 302:  # somewhere the page meant to send you, not a login page
        assert "login/?next=" not in response["Location"]


# Objects that do not exist (nor could: no uuid4 has version bits 0)
MISSING: dict[str, Any] = {
    "work": uuid.UUID(int=1), "draft": uuid.UUID(int=2), "purchase": uuid.UUID(int=3),
    "licence": uuid.UUID(int=4), "topup": uuid.UUID(int=5), "device": "no-such-device",
    "token": 2_000_000_000, "seed": 2_000_000_000, "trace": 2_000_000_000, "month": "2026-11",
    "module": "0" * 64, "job": str(uuid.UUID(int=0)),
    "rv_review": str(uuid.UUID(int=8)),
    "pm_conversation": str(uuid.UUID(int=6)), "pm_message": str(uuid.UUID(int=7)),
    "pm_blocked": "no-such-member",
    "dm_relayed": str(uuid.UUID(int=9)),
    "cm_search": 2_000_000_000}


def _foreign_404s() -> list[Any]:
    """Each 404 of Carol's and Rob's (who own nothing in the world) for an object."""
    return [pytest.param(method, path, role, id=f"{method} {path} as {role}")
            for method, path, *statuses in API if "{" in path
            for role, expected in zip(ROLES, statuses, strict=True)
            if role in ("carol", "rob") and expected == 404]


@pytest.mark.parametrize(("method", "path", "role"), _foreign_404s())
def test_another_users_object_answers_as_a_missing_one(method, path, role, world,
                                                       clients) -> None:
    client, _page = clients(role)
    theirs = _api_call(client, method, path, world)
    missing = _api_call(client, method, path, {**world, **MISSING})
    assert (theirs.status_code, theirs.json()) == (missing.status_code, missing.json())


# --- the tables against the URL configuration ---------------------------------------

def _configured() -> dict[str, Any]:
    """Every route in the URL configuration, spelt as ``ResolverMatch.route`` spells it,
    and its view."""
    found: dict[str, Any] = {}

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            pattern = str(entry.pattern)
            route = prefix + pattern.removeprefix("^") if prefix else pattern
            if isinstance(entry, URLResolver):
                walk(list(entry.url_patterns), route)
            elif isinstance(entry, URLPattern):
                found[route] = entry.callback

    walk(list(get_resolver().url_patterns), "")
    return found


def _served(view: Any) -> set[str] | None:
    """The methods a class-based view answers; None for a function (not knowable)."""
    cls = getattr(view, "view_class", None)
    if cls is None:
        return None
    return {m.upper() for m in cls.http_method_names
            if m not in ("options", "head") and hasattr(cls, m)}


def _row_route(path: str) -> str | None:
    try:
        return resolve(path.split("?", maxsplit=1)[0].format(**MISSING)).route
    except Resolver404:
        return None


def test_every_api_route_and_method_has_a_row() -> None:
    configured = {(route, method) for route, view in _configured().items()
                  if route.startswith("api/") for method in _served(view) or {"GET"}}
    rows = {(_row_route(path), method) for method, path, *_ in API}
    assert len(configured) > 40  # the walk found the API
    missing = sorted(f"{method} /{route}" for route, method in configured - rows)
    assert not missing, f"API routes with no row in API: {missing}"


def test_every_page_has_a_row() -> None:
    # The Django admin is one family (ADMIN_PAGES), not a row per model.
    configured = {route for route in _configured() if not route.startswith(("api/", "admin/"))}
    rows = {_row_route(path) for _method, path, *_ in PAGES}
    assert len(configured) > 15  # the walk found the portal
    missing = sorted(f"/{route}" for route in configured - rows)
    assert not missing, f"pages with no row in PAGES: {missing}"


def test_no_row_names_a_route_or_method_that_is_gone() -> None:
    routes = _configured()
    gone = []
    for method, path, *statuses in API + PAGES + ADMIN_PAGES:
        route = _row_route(path)
        if route is None or route not in routes:
            gone.append(f"{method} {path}: no such route")
            continue
        served = _served(routes[route])
        refused = set(statuses) <= {401, 405}  # a row saying the method is refused
        if served is not None and method not in served and not refused:
            gone.append(f"{method} {path}: the view has no {method}")
    assert not gone, gone
