"""Attachments in the playground, in Chromium: attach an image, see its thumbnail, send it, read
the offline model's acknowledgement, reload and see it again; a file over the limit is refused
with a visible message. The server is the dev server's composition (local signed route)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.browser.browser_support import WAIT_MS, OpenPlayground
from tests.support.servers import UvicornThread

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
)


def test_attach_an_image_send_it_and_see_it_after_a_reload(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    playground = open_playground(server.url, settings={"token": token})
    page = playground.page
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files({"name": "dot.png", "mimeType": "image/png", "buffer": PNG})

    tray = page.get_by_role("list", name="Attachments to send")
    chip = tray.locator(".attachment")
    expect(chip).to_have_attribute("data-status", "ready", timeout=WAIT_MS)
    expect(chip.get_by_role("img", name="dot.png")).to_be_visible()

    playground.send("What is in this picture?")
    playground.wait_answered()
    sent = playground.messages.locator(".message.user").last
    expect(sent.get_by_role("img", name="dot.png")).to_be_visible()
    expect(tray).to_be_hidden()
    expect(playground.last_answer()).to_contain_text(
        'I received 1 attachment: "dot.png" (image/png'
    )

    page.reload()
    reloaded = playground.messages.locator(".message.user").first
    image = reloaded.get_by_role("img", name="dot.png")
    expect(image).to_be_visible(timeout=WAIT_MS)
    expect(image).to_have_attribute("src", re.compile(r"/attachments/local/files/"))
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 1", arg=image.element_handle()
    )


def test_a_file_over_the_limit_is_refused_with_a_visible_message(
    server: UvicornThread, open_playground: OpenPlayground, token: str
) -> None:
    playground = open_playground(server.url, settings={"token": token})
    page = playground.page
    too_big = b"\0" * (10 * 1024 * 1024 + 1)
    page.locator("#attach-files").set_input_files(
        {"name": "huge.png", "mimeType": "image/png", "buffer": too_big}
    )

    expect(playground.error).to_contain_text("huge.png", timeout=WAIT_MS)
    expect(playground.error).to_contain_text("too large")
    expect(page.get_by_role("list", name="Attachments to send")).to_be_hidden()
