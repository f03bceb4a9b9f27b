"""Steps the end-to-end tests share around a sale: give a seeding agent a whole work, and
trace a suspect copy in the portal as a rights holder would."""

from __future__ import annotations

import time

import httpx

from licensing.core import KeyRing, read_piece
from tests.support.agents import AgentProcess
from tests.support.platform import Platform


def seed_all(agent: AgentProcess, site: Platform, work_id: str) -> None:
    """Give a seeding agent every verified piece, as the platform's seed agent has them."""
    from agent.store import PieceStore

    with site.api("rita") as client:
        manifest = client.get(f"/api/v1/works/{work_id}/manifest/").json()["token"]
    ring = KeyRing.from_jwks(httpx.get(f"{site.url}/.well-known/jwks.json").content)
    store = PieceStore(agent.home / "store")
    work = store.add_work(manifest, keyring=ring, now=int(time.time()))
    ciphertext = site.data_dir / "ciphertext" / f"{work_id}.pmc"
    for index in range(work.piece_count):
        assert work.write_piece(index, read_piece(ciphertext, work.manifest, index))
    store.close()


def trace_in_portal(site: Platform, username: str, data: bytes, name: str) -> str:
    """Log in to the portal as a person would, upload a suspect copy, read the report."""
    with httpx.Client(base_url=site.url, timeout=120, follow_redirects=True) as browser:
        browser.get("/login/")
        browser.post("/login/", data={
            "username": username, "password": site.logins[username],
            "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": f"{site.url}/login/"})
        page = browser.post("/studio/trace/", data={
            "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            files={"file": (name, data)}, headers={"Referer": f"{site.url}/studio/trace/"})
        assert page.status_code == 200, page.text[-2000:]
        assert "/studio/trace/" in str(page.url), page.url
        return page.text
