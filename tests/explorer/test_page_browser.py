"""The attention explorer's page in a real headless browser (Chromium, driven by selenium through chromedriver):
it loads from a file:// URL without console errors, and what it draws follows the layer, the heads and the token
pointed at, with the weights of its embedded JSON; inline in a notebook's output (ExplorerView) it draws the same in
its sandboxed frame, and a hostile sentence stays text.

./setup.sh --with-browser installs Debian's chromium and chromium-driver; where they are missing (outside CI) the
tests are skipped with a message saying how to install them. In CI (environment variable CI set) a missing browser
fails the tests.
"""
import os
import shutil
import tempfile

import pytest
import torch

from lib.explorer.page import (counting_page_data, explore, page_data, translation_attention,
                               translation_page_data, word_numbers, write_page)
from lib.counting import CountingModel, make_counting_data
from lib.translation.translator import Translator

TEXT = "Ich habe heute keine Zeit."
INSTALL = ("no headless Chromium for the browser tests: run ./setup.sh --with-browser, or 'apt-get install chromium "
           "chromium-driver' and 'pip install selenium'")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000")  # containers: a small /dev/shm
SMALLEST_LINE = 1e-3  # explorer.js draws no line for a smaller weight


def _programs():
    """(chromium, chromedriver) paths, or None where one is missing."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def driver():
    """A headless Chromium (a fresh profile) driven by selenium, or a skip (a failure in CI) where there is none."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        programs = None
    else:
        programs = _programs()
    if programs is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL)
        pytest.skip(INSTALL)
    options = webdriver.ChromeOptions()
    options.binary_location = programs[0]
    profile = tempfile.mkdtemp(prefix="explorer-chromium-")
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(programs[1]), options=options)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def translation_page(tmp_path_factory):
    """(path, embedded JSON) of the shipped translator's page for TEXT, greedy."""
    torch.set_num_threads(1)
    translator = Translator.load()
    result = translation_attention(translator, TEXT)
    data = translation_page_data(result, translator, "translator.pth", "greedy", "I have no time today.")
    path = str(tmp_path_factory.mktemp("browser") / "explorer.html")
    write_page(data, path)
    return path, page_data(open(path, encoding="utf-8").read())


def load(driver, path):
    """Open the page at ``path``; returns its console errors (none expected)."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get("file://" + os.path.abspath(path))
    assert driver.find_element("css selector", "body").get_attribute("data-ready") == "true"
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def drawn_lines(driver):
    """{(head, query, key): weight} of the lines of the head view."""
    lines = driver.execute_script(
        "return Array.from(document.querySelectorAll('#lines line')).map(function (line) {"
        " return ['data-head', 'data-query', 'data-key', 'data-weight'].map(function (name) {"
        " return Number(line.getAttribute(name)); }); });")
    return {(int(head), int(query), int(key)): weight for head, query, key, weight in lines}


def expected_lines(data, view_id, entry, heads, query=None):
    """The lines the page should draw: {(head, query, key): weight} of weights >= SMALLEST_LINE."""
    view = next(view for view in data["views"] if view["id"] == view_id)
    weights = torch.tensor(view["entries"][entry]["weights"], dtype=torch.float64) / data["scale"]
    return {(head, row, key): float(weights[head, row, key]) for head in heads for row in range(weights.shape[1])
            for key in range(weights.shape[2]) if weights[head, row, key] >= SMALLEST_LINE
            and (query is None or row == query)}


def assert_same_lines(drawn, expected):
    assert drawn.keys() == expected.keys()
    assert all(abs(drawn[key] - expected[key]) < 1e-6 for key in expected)


def click(driver, selector):
    driver.find_element("css selector", selector).click()


def hover(driver, selector):
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(driver).move_to_element(driver.find_element("css selector", selector)).perform()


def details(driver):
    """The details table of the focused token: {(head, other token): (data-weight, shown text)}."""
    cells = driver.find_elements("css selector", "#details-table td.weight")
    return {(int(cell.get_attribute("data-head")), int(cell.get_attribute("data-other"))):
            (float(cell.get_attribute("data-weight")), cell.text) for cell in cells}


def test_page_loads_without_console_errors_and_draws_the_cross_attention_of_the_json(driver, translation_page):
    path, data = translation_page
    assert load(driver, path) == []
    assert driver.title.startswith("Attention: Ich habe heute keine Zeit.")
    facts = driver.find_element("id", "facts").text
    assert "I have no time today." in facts and data["facts"][2][1] in facts  # real text, for screen readers too
    assert_same_lines(drawn_lines(driver), expected_lines(data, "cross", 2, range(4)))
    queries = driver.find_elements("css selector", '#query-column .token')
    assert [query.text for query in queries] == data["views"][2]["entries"][2]["queries"]


def test_layer_heads_and_the_token_pointed_at_change_what_is_drawn(driver, translation_page):
    path, data = translation_page
    assert load(driver, path) == []
    before = drawn_lines(driver)
    click(driver, '#entry-choice button[data-entry="0"]')
    layer_one = drawn_lines(driver)
    assert layer_one != before
    assert_same_lines(layer_one, expected_lines(data, "cross", 0, range(4)))
    click(driver, '#head-choice button[data-head="1"]')
    assert driver.find_element("css selector", '#head-choice button[data-head="1"]').get_attribute(
        "aria-pressed") == "false"
    assert_same_lines(drawn_lines(driver), expected_lines(data, "cross", 0, [0, 2, 3]))
    hover(driver, '#query-column .token[data-index="2"]')
    assert_same_lines(drawn_lines(driver), expected_lines(data, "cross", 0, [0, 2, 3], query=2))
    weights = torch.tensor(data["views"][2]["entries"][0]["weights"], dtype=torch.float64) / data["scale"]
    shown = details(driver)
    assert shown.keys() == {(head, key) for head in (0, 2, 3) for key in range(weights.shape[2])}
    for (head, key), (weight, text) in shown.items():
        assert abs(weight - weights[head, 2, key]) < 1e-4 and abs(float(text) - weights[head, 2, key]) < 1e-4
    tooltip = driver.find_element("id", "tooltip")
    assert tooltip.is_displayed() and f"{weights[0, 2].max():.4f}" in tooltip.text
    hover(driver, "h1")
    assert not tooltip.is_displayed()
    assert_same_lines(drawn_lines(driver), expected_lines(data, "cross", 0, [0, 2, 3]))


def test_decoder_self_attention_draws_no_line_to_a_later_token(driver, translation_page):
    path, data = translation_page
    assert load(driver, path) == []
    click(driver, '#kind-choice button[data-view="decoder"]')
    drawn = drawn_lines(driver)
    assert_same_lines(drawn, expected_lines(data, "decoder", 2, range(4)))
    assert drawn and all(key <= query for _, query, key in drawn)


def test_merged_words_sum_the_key_pieces_and_average_the_query_pieces(driver, translation_page):
    path, data = translation_page
    assert load(driver, path) == []
    click(driver, '#kind-choice button[data-view="encoder"]')
    entry = data["views"][0]["entries"][2]
    words = word_numbers(entry["queries"])
    split = next(word for word in set(words) if words.count(word) > 1)  # a word of several pieces
    click(driver, "#merge")
    hover(driver, f'#query-column .token[data-index="{split}"]')
    weights = torch.tensor(entry["weights"], dtype=torch.float64) / data["scale"]
    members = [[piece for piece, word in enumerate(words) if word == number] for number in range(max(words) + 1)]
    shown = details(driver)
    assert len(shown) == 4 * len(members)
    for (head, key), (weight, _) in shown.items():
        expected = weights[head][members[split]][:, members[key]].sum(1).mean()
        assert abs(weight - expected) < 1e-4
    labels = [token.text for token in driver.find_elements("css selector", "#key-column .token .label")]
    assert len(labels) == len(members) and "\u2581" not in "".join(labels)


def test_model_view_has_every_layer_and_head_and_opens_one_large(driver, translation_page):
    path, data = translation_page
    assert load(driver, path) == []
    click(driver, "#tab-model")
    assert len(driver.find_elements("css selector", ".thumb canvas")) == 3 * 3 * 4
    click(driver, '.thumb[data-view="cross"][data-entry="1"][data-head="3"]')
    assert driver.find_element("id", "zoom").get_attribute("open") is not None
    assert "layer 2 of 3, head 4" in driver.find_element("id", "zoom-title").text
    entry = data["views"][2]["entries"][1]
    cells = driver.find_elements("css selector", "#zoom-table td")
    assert len(cells) == len(entry["queries"]) * len(entry["keys"])
    for cell in cells:
        query, key = int(cell.get_attribute("data-query")), int(cell.get_attribute("data-key"))
        assert abs(float(cell.get_attribute("data-weight")) - entry["weights"][3][query][key] / data["scale"]) < 1e-4
    headers = [header.text for header in driver.find_elements("css selector", "#zoom-table tbody th")]
    assert headers == entry["queries"]
    click(driver, "#zoom-next")
    assert "head 4" in driver.find_element("id", "zoom-title").text  # the last head: no next one
    click(driver, "#zoom-previous")
    assert "layer 2 of 3, head 3" in driver.find_element("id", "zoom-title").text
    click(driver, "#zoom-close")
    assert driver.find_element("id", "zoom").get_attribute("open") is None


def test_counting_page_shows_each_sequence(driver, tmp_path):
    torch.manual_seed(0)
    model = CountingModel(3, 6, 8)
    one_hot, digits, counts = make_counting_data(3, 6, 3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, weights = model(one_hot)
    path = str(tmp_path / "counting.html")
    write_page(counting_page_data(weights, digits, logits.argmax(-1), counts, "sigmoid", "model.pth"), path)
    data = page_data(open(path, encoding="utf-8").read())
    assert load(driver, path) == []
    assert not driver.find_element("id", "merge-label").is_displayed()
    assert_same_lines(drawn_lines(driver), expected_lines(data, "counting", 0, [0]))
    keys = [token.text for token in driver.find_elements("css selector", "#key-column .token .label")]
    assert keys == [str(digit) for digit in digits[0].tolist()]
    click(driver, '#entry-choice button[data-entry="2"]')
    assert_same_lines(drawn_lines(driver), expected_lines(data, "counting", 2, [0]))
    assert "Sequence 3: " + " ".join(map(str, digits[2].tolist())) in driver.find_element("id", "caption").text


# ---- inline in a notebook (ExplorerView) --------------------------------------------------------------------------


def load_notebook_output(driver, folder, view):
    """Open a file standing in for a notebook's output cell, which holds ``view._repr_html_()``, and switch into the
    view's frame once its page is ready. Returns the console errors (none expected); the caller switches back."""
    from selenium.webdriver.support.ui import WebDriverWait
    path = folder / "notebook.html"
    path.write_text('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Notebook</title></head>'
                    f'<body><div class="output_html">{view._repr_html_()}</div></body></html>', encoding="utf-8")
    driver.get_log("browser")
    driver.get("file://" + str(path))
    frames = driver.find_elements("css selector", "iframe")
    assert len(frames) == 1 and frames[0].get_attribute("sandbox") == "allow-scripts"
    driver.switch_to.frame(frames[0])
    WebDriverWait(driver, 10).until(
        lambda driver: driver.find_element("css selector", "body").get_attribute("data-ready") == "true")
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_notebook_view_draws_the_page_in_its_frame(driver, tmp_path):
    view = explore(Translator.load(), TEXT, beam=1, reference="I have no time today.")
    data = view.data
    try:
        assert load_notebook_output(driver, tmp_path, view) == []
        facts = driver.find_element("id", "facts").text
        assert "I have no time today." in facts and dict(data["facts"])["Translation"] in facts
        assert_same_lines(drawn_lines(driver), expected_lines(data, "cross", 2, range(4)))
        queries = driver.find_elements("css selector", "#query-column .token")
        assert [query.text for query in queries] == data["views"][2]["entries"][2]["queries"]
        click(driver, '#entry-choice button[data-entry="0"]')  # the page answers inside the sandbox
        assert_same_lines(drawn_lines(driver), expected_lines(data, "cross", 0, range(4)))
    finally:
        driver.switch_to.default_content()
    assert driver.title == "Notebook"  # the page's title stays inside the frame


def test_notebook_view_shows_a_hostile_sentence_as_text(driver, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    hostile = 'Er sagte "</script><img src=x onerror=alert(1)>" und \'ging\'.'
    view = explore(Translator.load(), hostile, beam=1)
    try:
        assert load_notebook_output(driver, tmp_path, view) == []
        assert driver.execute_script("return document.images.length") == 0
        sentence = dict(view.data["facts"])["Sentence"]
        assert '"</script><img src' in sentence  # what the model saw, unknown characters as <UNK>
        assert sentence in driver.find_element("id", "facts").text
    finally:
        driver.switch_to.default_content()
    assert driver.execute_script("return document.images.length + document.querySelectorAll('script').length") == 0
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text
