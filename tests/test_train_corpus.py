"""Training text: the built-in stories, uploads, and Project Gutenberg fetched from a server this test starts
on 127.0.0.1 (never the internet)."""
from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from engine.train.corpus import (OFFLINE, CorpusError, builtin_stories, decode_text_file, fetch_gutenberg, from_upload,
                                 make_tokenizer, prepare, strip_gutenberg)
from engine.train.stories import generate_stories

BOOK = ("The Project Gutenberg eBook of A Fake Book\n\nTitle: A Fake Book\n\nAuthor: Nobody\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK A FAKE BOOK ***\n\n"
        "CHAPTER I.\n\nIt was a bright cold day in April, and the clocks were striking.\n"
        + "The cat sat on the mat and looked at the moon. " * 200
        + "\n\n*** END OF THE PROJECT GUTENBERG EBOOK A FAKE BOOK ***\n\nLicence text that is not the book.\n")


class _Books(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path == "/cache/epub/12345/pg12345.txt":
            body = BOOK.encode()
        elif self.path == "/cache/epub/999/pg999.txt":
            body = b"x" * 5000  # bigger than the test's cap
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Books)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket closes


def test_a_book_is_fetched_by_number_without_the_licence(server):
    corpus = fetch_gutenberg(12345, base_url=server)
    assert corpus.name == "Project Gutenberg book 12345 (A Fake Book)"
    assert corpus.text.startswith("CHAPTER I.") and "Licence text" not in corpus.text and "*** END" not in corpus.text
    assert "public domain" in corpus.source and server in corpus.source


def test_a_missing_book_and_an_offline_server_get_one_line_each(server):
    with pytest.raises(CorpusError, match="no plain-text book number 777"):
        fetch_gutenberg(777, base_url=server)
    with pytest.raises(CorpusError) as offline:
        fetch_gutenberg(11, base_url=f"http://127.0.0.1:{_closed_port()}", timeout=2)
    assert str(offline.value) == OFFLINE and "\n" not in OFFLINE
    with pytest.raises(CorpusError, match="whole number"):
        fetch_gutenberg(0, base_url=server)


def test_a_download_is_capped_whatever_the_server_sends(server):
    with pytest.raises(CorpusError, match="larger than"):
        fetch_gutenberg(999, base_url=server, max_bytes=1000)


def test_gutenberg_boilerplate_is_kept_when_there_are_no_markers():
    assert strip_gutenberg("just a text") == "just a text"


def test_uploads_decode_utf8_bom_and_old_windows_text_and_refuse_binary():
    assert decode_text_file("\ufeffcafé".encode("utf-8")) == "café"
    assert decode_text_file("naïve “quotes”".encode("cp1252")) == "naïve “quotes”"
    with pytest.raises(CorpusError, match="not a text file"):
        decode_text_file(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(CorpusError, match="limit"):
        from_upload(b"a" * 10_000_001, "big.txt")
    with pytest.raises(CorpusError, match="empty"):
        from_upload(b"   \n\n", "blank.txt")
    assert from_upload("Hello, world.\n".encode(), "hi.txt").name == "The file hi.txt"


def test_the_builtin_stories_are_deterministic_and_say_where_they_come_from():
    assert generate_stories(5, seed=3) == generate_stories(5, seed=3)
    assert generate_stories(5, seed=3) != generate_stories(5, seed=4)
    corpus = builtin_stories(50)
    assert len(corpus.documents()) == 50 and "engine/train/stories.py" in corpus.source
    assert " a old" not in corpus.text and " a e" not in corpus.text  # articles agree with their nouns


def test_many_documents_hold_out_whole_documents_few_hold_out_the_last_tokens():
    corpus = builtin_stories(300)
    data = prepare(corpus, make_tokenizer(corpus, 400))
    assert data.heldout == "the last 15 of 300 documents"
    assert data.val_ids[0] == 0  # a held-out document starts with <|endoftext|>, like every training one
    book = from_upload(("The cat sat on the mat. " * 400).encode(), "cat.txt")
    small = prepare(book, data.tokenizer)
    assert small.heldout.startswith("the last ") and small.heldout.endswith(" tokens")
    assert len(small.train_ids) > len(small.val_ids) > 0
