"""The web page in real headless Chromium (Debian's `chromium`, driven by Playwright; .ci/run installs it)."""

import pytest
from tests.serving.server import Server

from aigc.report import write_report


@pytest.fixture
def reported_run(diffusion_run):
    """The shared diffusion run with a training report for the length of one test."""
    write_report(diffusion_run)
    yield diffusion_run
    (diffusion_run / "report.html").unlink()


def test_the_page_asks_for_a_key_then_generates_images(browser, artifacts, reported_run, gan_run, tmp_path):
    from tests.serving.test_server import make_key

    key_file, key = make_key(tmp_path)
    with Server(reported_run, gan_run, "--api-keys", key_file) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#status.error")  # no key yet: 401, and the key field appears
        assert "401" in page.inner_text("#status") and page.is_visible("#key")
        page.fill("#key", key)
        page.dispatch_event("#key", "change")
        page.wait_for_function("document.querySelectorAll('#model option').length === 2")

        page.select_option("#model", "digits")
        with page.context.expect_page() as opened:  # the run's training report, fetched with the key
            page.click("#report")
        opened.value.wait_for_load_state()
        assert opened.value.inner_text("h1") == "digits"
        opened.value.close()
        page.fill("#n", "8")
        page.fill("#seed", "3")
        page.select_option("#class", "7")
        page.fill("#steps", "4")
        page.click("#generate")
        page.wait_for_function("document.querySelectorAll('#images img').length === 8")
        captions = page.locator("#images figure").all_inner_texts()
        assert captions[0] == "seed 3, class 7" and captions[-1] == "seed 10, class 7"
        assert page.evaluate("[...document.querySelectorAll('#images img')].every(i => i.naturalWidth === 8)")
        page.screenshot(path=artifacts / "serve-page-diffusion.png", full_page=True)

        page.select_option("#model", "gan")
        assert not page.is_visible("#report")  # no report in that run
        assert not page.is_visible("#steps") and page.is_visible("#truncation")
        page.fill("#n", "100")  # over the server's limit: its message shows on the page
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('422')")
        assert "n: Input should be less than or equal to 64" in page.inner_text("#status")
        page.fill("#n", "8")
        page.fill("#truncation", "0.7")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.includes('images in')")
        assert page.locator("#images img").count() == 8
        page.screenshot(path=artifacts / "serve-page-gan.png", full_page=True)


def test_the_page_streams_a_completion_of_a_language_model(browser, artifacts, lm_run):
    with Server(lm_run) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length === 1")
        assert page.is_visible("#prompt") and not page.is_visible("#n") and page.is_visible("#max_tokens")
        page.fill("#prompt", "line 7")
        page.fill("#max_tokens", "30")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.includes('tokens in')")
        assert page.inner_text("#status").startswith("30 tokens in")
        shown = page.inner_text("#text")
        reply = server.call("POST", "/v1/completions", {"prompt": "line 7", "max_tokens": 30, "seed": 0}).json()
        assert shown == "line 7" + reply["choices"][0]["text"]  # what streamed is what one body holds
        page.fill("#prompt", "€")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('422')")
        assert "not in this model's vocabulary" in page.inner_text("#status")
        page.screenshot(path=artifacts / "serve-page-lm.png", full_page=True)


def test_the_page_draws_what_a_prompt_says_with_a_text_to_image_model(browser, artifacts, text2image_run):
    with Server(text2image_run) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length === 1")
        assert page.is_visible("#prompt") and page.is_visible("#n") and not page.is_visible("#class")
        page.fill("#prompt", "a large 5 at the top right")
        page.fill("#n", "4")
        page.fill("#steps", "2")
        page.click("#generate")
        page.wait_for_function("document.querySelectorAll('#images img').length === 4")
        assert page.evaluate("[...document.querySelectorAll('#images img')].every(i => i.naturalWidth === 32)")
        page.fill("#prompt", "a large € at the top")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('422')")
        assert "is in no training caption" in page.inner_text("#status")
        page.screenshot(path=artifacts / "serve-page-text2image.png", full_page=True)


def test_the_page_holds_a_conversation_with_a_chat_model(browser, artifacts, chat_run):
    with Server(chat_run) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length === 1")
        assert page.inner_text("#generate") == "Send" and page.is_visible("#new-chat") and not page.is_visible("#n")
        messages = [{"role": "user", "content": "line 3"}]
        body = {"messages": messages, "max_tokens": 5, "temperature": 1}  # two turns fit the context of 64
        seed = next(s for s in range(50) if answer(server, {**body, "seed": s}).strip())  # a visible reply
        page.fill("#max_tokens", "5")
        page.fill("#temperature", "1")
        page.fill("#seed", str(seed))
        page.fill("#prompt", "line 3")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.includes('tokens in')")
        first = page.locator("#chat .assistant").inner_text()
        body["seed"] = seed
        assert first == answer(server, body)  # what streamed is what one body holds
        page.fill("#prompt", "line 4")
        page.click("#generate")
        page.wait_for_function(
            "document.querySelectorAll('#chat .assistant').length === 2 && "
            "document.querySelector('#status').textContent.includes('tokens in')"
        )
        second = page.locator("#chat .assistant").nth(1).inner_text()
        messages += [{"role": "assistant", "content": first}, {"role": "user", "content": "line 4"}]
        assert second == answer(server, {**body, "messages": messages})  # the second turn saw the conversation
        assert page.locator("#chat .user").count() == 2
        page.screenshot(path=artifacts / "serve-page-chat.png", full_page=True)
        page.click("#new-chat")
        assert page.locator("#chat p").count() == 0


def test_the_page_shows_what_an_assistant_found_under_its_reply(browser, artifacts, assistant_parts, tmp_path):
    from aigc.cli import main as aigc

    parts = {name: str(assistant_parts / name) for name in ("gen", "index", "intents")}
    argv = ["assistant", "create", "--generator", parts["gen"], "--index", parts["index"], "--intents",
            parts["intents"], "--out", str(tmp_path / "support")]  # fmt: skip
    assert aigc(argv) == 0
    with Server(f"support={tmp_path / 'support'}") as server:  # as `aigc serve` loads it, in its worker
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length === 1")
        assert page.inner_text("#generate") == "Send"
        page.fill("#max_tokens", "6")
        page.fill("#seed", "3")
        page.fill("#prompt", "how do I cancel order no. 7")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.includes('tokens in')")
        body = {"messages": [{"role": "user", "content": "how do I cancel order no. 7"}], "max_tokens": 6, "seed": 3}
        found = server.call("POST", "/v1/chat/completions", body).json()["aigc"]["assistant"]
        retrieved = ", ".join(f"#{i}" for i in found["retrieved"])
        note = f"intent {found['intent']} (classifier); retrieved {retrieved}"
        assert page.locator("#chat .note").inner_text() == note
        page.screenshot(path=artifacts / "serve-page-assistant.png", full_page=True)


def answer(server, body) -> str:
    return server.call("POST", "/v1/chat/completions", body).json()["choices"][0]["message"]["content"]


def test_the_page_labels_texts_with_a_classifier(browser, artifacts, classifier_run):
    with Server(classifier_run) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length === 1")
        assert page.is_visible("#prompt") and not page.is_visible("#n") and not page.is_visible("#class")
        assert page.inner_text("#generate") == "Classify"
        texts = ["line 3: the cat jumps, good dog 5 times.", "line 4: the owl jumps, bad hen 2 times."]
        page.fill("#prompt", "\n".join(texts))
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.includes('texts in')")
        shown = page.inner_text("#text").splitlines()
        reply = server.call("POST", "/v1/classify", {"input": texts}).json()
        assert [line.split(" ")[0] for line in shown] == [r["label"] for r in reply["results"]] == ["good", "bad"]
        assert shown[0].endswith(": " + texts[0])
        page.screenshot(path=artifacts / "serve-page-classifier.png", full_page=True)


def test_the_page_lists_a_recommender_s_items_with_their_reasons(browser, artifacts, recommender_run):
    with Server(recommender_run) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length === 1")
        assert page.inner_text("#generate") == "Recommend" and not page.is_visible("#n")
        for asked, body, liked in (
            ("user: 2", {"user": "2"}, 8),
            ("Drama Film 20 (2020)\n121", {"history": ["Drama Film 20 (2020)", "121"]}, 2),
        ):
            page.fill("#prompt", asked)
            page.click("#generate")
            page.wait_for_function(f"document.querySelector('#status').textContent.includes('after {liked} liked')")
            shown = page.inner_text("#text").splitlines()
            reply = server.call("POST", "/v1/recommend", body).json()
            assert len(shown) == len(reply["items"]) == 10
            for rank, (line, item) in enumerate(zip(shown, reply["items"], strict=True), 1):
                assert line.startswith(f"{rank}. {item['title']}")
        page.fill("#prompt", "Not A Film")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.includes('no item matches')")
        page.screenshot(path=artifacts / "serve-page-recommender.png", full_page=True)
