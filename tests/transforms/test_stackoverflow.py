"""StackOverflow: reading the dump, the selection rules (§3.2) and the Figure 6c markup, on the sample dump."""

from __future__ import annotations

import collections
import os

import py7zr
import pytest

from schemas.config import StackOverflowConfig
from schemas.records import Rejected, StackComment, StackPost
from tests.conftest import EXAMPLES, peak_python_memory
from transforms.formatting import markup
from transforms.formatting.buckets import boundaries_from_histogram
from transforms.stackoverflow.dump_files import DumpFile, DumpRange, find_dump_files, split_ranges
from transforms.stackoverflow.dump_rows import parse_tags
from transforms.stackoverflow.format import FormatThreadFn, format_thread
from transforms.stackoverflow.html_text import body_text
from transforms.stackoverflow.selection import Thread, link_comments, select_thread
from transforms.stackoverflow.source import read_range

SAMPLE_DUMP = os.path.join(EXAMPLES, "stackoverflow")
SEED = 1234  # examples/sample.yaml's seed
BOUNDARIES = [4, 7, 12, 25, 30]  # nearest-rank percentiles of the 17 kept scores (checked below)

# The sample's four threads, formatted: what the pipeline must write, character for character.
EXPECTED_TEXT = {
    1: """<| q dscore=0 tags=python,django |>
Django - How to display a form with user input

I'm trying to create a simple web application that can allow a user to enter a username and password. Here's what I have so far:
<code>
from django.shortcuts import render

def login(request):
    return render(request, 'login.html')
</code>
Can you help?
<|/ q |>
<| c |>
Why aren't you using the django authentication library?
<|/ c |>
<| a tags=python,django dscore=0 |>
You need to add your form to the template:
<code>
<form method="post">
  {{ form.as_p }}
</form>
</code>
<|/ a |>
<| c |>
Thanks, that worked! I had forgotten the {% csrf_token %} too.
<|/ c |>
""",
    10: """<| q dscore=3 |>
How do I remove duplicates from an array?

Given [1, 2, 2, 3], how do I get [1, 2, 3]?
<|/ q tags=javascript,arrays |>
<| c |>
Do you need to keep the order? Set & spread keeps it.
<|/ c |>
<| a tags=javascript,arrays |>
Use a Set:
<code>
const unique = [...new Set(items)];
</code>
<|/ a dscore=4 |>
<| c |>
Comment 24 on the Set answer.
<|/ c |>
<| c |>
Comment 21 on the Set answer.
<|/ c |>
<| c |>
Comment 23 on the Set answer.
<|/ c |>
<| c |>
Comment 20 on the Set answer.
<|/ c |>
<| c |>
Comment 26 on the Set answer.
<|/ c |>
<| a |>
Answer 13: loop and check with indexOf (score 12).
<|/ a dscore=2 tags=javascript,arrays |>
<| a tags=javascript,arrays |>
Answer 18: loop and check with indexOf (score 7).
<|/ a dscore=1 |>
<| a tags=javascript,arrays |>
Answer 11: loop and check with indexOf (score 5).
<|/ a dscore=1 |>
<| a dscore=1 |>
Answer 16: loop and check with indexOf (score 5).
<|/ a tags=javascript,arrays |>
<| a tags=javascript,arrays |>
Answer 21: loop and check with indexOf (score 3).
<|/ a dscore=0 |>
<| a tags=javascript,arrays |>
Answer 20: loop and check with indexOf (score 2).
<|/ a dscore=0 |>
<| a tags=javascript,arrays dscore=0 |>
Answer 17: loop and check with indexOf (score 1).
<|/ a |>
<| a |>
Answer 22: loop and check with indexOf (score 0).
<|/ a dscore=0 tags=javascript,arrays |>
<| a tags=javascript,arrays dscore=0 |>
Answer 15: loop and check with indexOf (score 0).
<|/ a |>
""",
    40: """<| q dscore=1 tags=html,python |>
Why does <br> show up literally in my Jinja template?

My Jinja template prints <br> instead of a line break & I don't know why \u2014 the "safe" filter didn't help.
Note: the docs say
<code>
{{ text|safe }}
</code>
Python 3.11
Jinja2 3.1
<code>
template = env.from_string("<pre><code>{{ x }}</code></pre>")
if a < b and b > c:
    print(template.render(x="&amp;"))
</code>
<|/ q |>
<| a dscore=2 tags=html,python |>
Autoescaping is on.
Mark the value safe:
Wrap it:
<code>
from markupsafe import Markup
html = Markup(text)
</code>
Or turn autoescape off\u00a0(not recommended).
<|/ a |>
<| c |>
Markup(text) is not safe if text comes from a user: <script> runs.
<|/ c |>
""",
    60: """<| q tags=c++,pointers |>
What does int* const p mean?

What is the difference between const int* and int* const?
<|/ q dscore=0 |>
<| a dscore=0 tags=c++,pointers |>
Read it right to left: p is a const pointer to int.
<|/ a |>
""",
}

# Every sample record that does not reach a document: (table, Id) → (stage, reason).
EXPECTED_REJECTED = {
    ("Posts.xml", 50): ("stackoverflow-read", "post-type"),  # tag wiki
    ("Posts.xml", 54): ("stackoverflow-read", "post-type"),  # tag wiki excerpt
    ("Posts.xml", 52): ("stackoverflow-read", "deleted"),
    ("Posts.xml", 53): ("stackoverflow-read", "malformed-row"),  # Score="high"
    ("Comments.xml", 32): ("stackoverflow-read", "deleted"),
    ("Posts.xml", 4): ("stackoverflow-join", "unanswered"),
    ("Posts.xml", 30): ("stackoverflow-join", "no-selected-answer"),
    ("Posts.xml", 3): ("stackoverflow-join", "low-score"),
    ("Posts.xml", 12): ("stackoverflow-join", "low-score"),
    ("Posts.xml", 31): ("stackoverflow-join", "low-score"),
    ("Posts.xml", 19): ("stackoverflow-join", "answer-limit"),  # the 11th non-negative answer of question 10
    ("Posts.xml", 51): ("stackoverflow-join", "missing-parent"),  # its question 999 is not in the dump
    ("Comments.xml", 2): ("stackoverflow-join", "parent-not-selected"),  # on the negative answer 3
    ("Comments.xml", 4): ("stackoverflow-join", "parent-not-selected"),  # on the unanswered question 4
    ("Comments.xml", 28): ("stackoverflow-join", "parent-not-selected"),  # on the cut answer 19
    ("Comments.xml", 22): ("stackoverflow-join", "comment-limit"),  # 6th and 7th comments on answer 14
    ("Comments.xml", 25): ("stackoverflow-join", "comment-limit"),
    ("Comments.xml", 30): ("stackoverflow-join", "missing-parent"),  # on answer 51, whose question is missing
    ("Comments.xml", 31): ("stackoverflow-join", "missing-parent"),  # on post 777, not in the dump
    ("Comments.xml", 33): ("stackoverflow-join", "missing-parent"),  # on the tag wiki 50, rejected at read
}


def read_dump(path: str, range_bytes: int = 64 * 2**20, max_row_bytes: int = 2**20) -> list:
    return [out for r in split_ranges(find_dump_files(path), range_bytes) for out in read_range(r, max_row_bytes)]


SAMPLE_LIMITS = StackOverflowConfig(require_kept_answer=True)  # as examples/sample.yaml sets it


def join(records: list, limits: StackOverflowConfig = SAMPLE_LIMITS) -> tuple[dict[int, Thread], list[Rejected]]:
    """The two joins of JoinThreads, done with dicts: {question id: Thread} and the rejects."""
    posts = [r for r in records if isinstance(r, StackPost)]
    question_of = collections.defaultdict(list)
    for p in posts:
        question_of[p.post_id].append(p.question_id)
    by_post = collections.defaultdict(list)
    for c in (r for r in records if isinstance(r, StackComment)):
        by_post[c.post_id].append(c)
    groups = collections.defaultdict(lambda: ([], []))
    for p in posts:
        groups[p.question_id][0].append(p)
    rejected = []
    for post_id, comments in by_post.items():
        for out in link_comments(question_of.get(post_id, []), comments):
            if isinstance(out, Rejected):
                rejected.append(out)
            else:
                groups[out[0]][1].append(out[1])
    threads = {}
    for question_id, (group_posts, group_comments) in groups.items():
        selection = select_thread(group_posts, group_comments, limits)
        rejected += selection.rejected
        if selection.thread:
            threads[question_id] = selection.thread
    return threads, rejected


def rejected_by_row(rejected: list[Rejected]) -> dict:
    out = {}
    for r in rejected:
        number = (
            int(r.detail.split(":")[0].split()[-1])
            if r.stage == "stackoverflow-join"
            else int(r.detail.split("Id=")[1].split()[0])
        )
        out[(r.path, number)] = (r.stage, r.reason)
    return out


@pytest.fixture(scope="module")
def sample_records() -> list:
    return read_dump(SAMPLE_DUMP)


# ---- the selection rules ---------------------------------------------------------------------


def test_sample_selection_keeps_exactly_the_expected_posts(sample_records):
    threads, join_rejected = join(sample_records)
    assert sorted(threads) == [1, 10, 40, 60]
    answers = {q: [a.post_id for a, _ in t.answers] for q, t in threads.items()}
    # Question 10 has 12 answers: -2 is left out, and of the 11 non-negative ones the 10 best
    # are kept, best first; 11 and 16 tie on score and date (lower Id first); 22, 15 and 19
    # tie at 0 and the earlier CreationDate wins, so 19 is the one cut.
    assert answers == {1: [2], 10: [14, 13, 18, 11, 16, 21, 20, 17, 22, 15], 40: [41], 60: [61]}
    # Answer 14 has 7 comments: the 5 earliest by CreationDate, then Id (21 and 23 tie on date).
    comments = {a.post_id: [c.comment_id for c in cs] for t in threads.values() for a, cs in t.answers if cs}
    assert comments == {2: [3], 14: [24, 21, 23, 20, 26], 41: [29]}
    assert {q: [c.comment_id for c in t.comments] for q, t in threads.items()} == {1: [1], 10: [27], 40: [], 60: []}
    read_rejected = [r for r in sample_records if isinstance(r, Rejected)]
    assert rejected_by_row(read_rejected + join_rejected) == EXPECTED_REJECTED
    assert len(read_rejected + join_rejected) == len(EXPECTED_REJECTED)


def test_the_sample_accounts_for_every_row(sample_records):
    rows = sum(open(os.path.join(SAMPLE_DUMP, t), encoding="utf-8").read().count("<row ") for t in ("Posts.xml", "Comments.xml"))
    threads, _ = join(sample_records)
    in_threads = sum(1 + len(t.comments) + sum(1 + len(cs) for _, cs in t.answers) for t in threads.values())
    assert len(sample_records) == rows == 46
    assert in_threads + len(EXPECTED_REJECTED) == rows


def post(post_id: int, score: int, date: str, parent: int | None = 1) -> StackPost:
    kind = StackPost.QUESTION if parent is None else StackPost.ANSWER
    return StackPost(
        StackPost.make_id("s", post_id), "s", post_id, kind, parent, score, date, title="T" if parent is None else ""
    )


def comment(comment_id: int, post_id: int, date: str) -> StackComment:
    return StackComment(StackComment.make_id("s", comment_id), "s", comment_id, post_id, 0, date, f"c{comment_id}")


def test_selection_limits_follow_the_config():
    question = post(1, 5, "2020-01-01", parent=None)
    answers = [post(10, 3, "2020-01-03"), post(11, 3, "2020-01-02"), post(12, 1, "2020-01-01"), post(13, 0, "2020-01-01")]
    comments = [comment(100, 11, "2020-02-02"), comment(101, 11, "2020-02-01"), comment(102, 1, "2020-02-01")]
    limits = StackOverflowConfig(max_answers=2, min_answer_score=1, max_comments=1)
    selection = select_thread([question, *answers], comments, limits)
    assert [a.post_id for a, _ in selection.thread.answers] == [11, 10]  # same score: earlier date first
    assert [c.comment_id for c in selection.thread.answers[0][1]] == [101]
    assert [c.comment_id for c in selection.thread.comments] == [102]
    assert selection.kept == 1 + 1 + 2 + 1
    assert sorted((r.detail.split(":")[0], r.reason) for r in selection.rejected) == [
        ("comment 100", "comment-limit"),
        ("post 12", "answer-limit"),
        ("post 13", "low-score"),
    ]


def test_by_default_a_question_with_only_negative_answers_is_kept_without_them():
    """§3.2: "all questions that have at least one answer", with "up to ten answers with a non-negative score"."""
    question = post(1, 5, "2020-01-01", parent=None)
    assert select_thread([question], [], StackOverflowConfig()).rejected[0].reason == "unanswered"
    comments = [comment(8, 1, "d"), comment(9, 2, "d")]
    selection = select_thread([question, post(2, -1, "2020-01-02")], comments, StackOverflowConfig())
    assert selection.thread.question == question and selection.thread.answers == ()
    assert [c.comment_id for c in selection.thread.comments] == [8] and selection.kept == 2
    assert sorted(r.reason for r in selection.rejected) == ["low-score", "parent-not-selected"]
    assert format_thread(selection.thread, [0, 1, 2, 3, 4], 0).text.count("<| a") == 0


def test_require_kept_answer_keeps_the_older_rule_and_a_repeated_id_counts_once():
    question = post(1, 5, "2020-01-01", parent=None)
    strict = StackOverflowConfig(require_kept_answer=True)
    negative = select_thread([question, post(2, -1, "2020-01-02")], [comment(9, 2, "d")], strict)
    assert negative.thread is None and negative.kept == 0
    assert sorted(r.reason for r in negative.rejected) == ["low-score", "no-selected-answer", "parent-not-selected"]
    twice = select_thread([question, question, post(2, 0, "2020-01-02")], [], StackOverflowConfig())
    assert twice.kept == 2 and [r.reason for r in twice.rejected] == ["duplicate-id"]


# ---- the markup (Figure 6c) ------------------------------------------------------------------


def test_sample_documents_character_for_character(sample_records):
    threads, _ = join(sample_records)
    scores = collections.Counter(s for t in threads.values() for s in t.scores())
    assert boundaries_from_histogram(scores) == BOUNDARIES
    texts = {q: format_thread(t, BOUNDARIES, SEED).text for q, t in threads.items()}
    assert texts == EXPECTED_TEXT


def test_every_region_carries_its_attributes_once_at_start_or_end(sample_records):
    threads, _ = join(sample_records)
    for seed in range(20):
        for t in threads.values():
            doc = format_thread(t, BOUNDARIES, seed)
            assert doc.kind == "stackoverflow" and doc.tags == t.question.tags and doc.text.endswith("|>\n")
            regions = [line for line in doc.text.splitlines() if line.startswith(("<| ", "<|/ "))]
            pairs = list(zip(regions[::2], regions[1::2]))
            assert len(pairs) * 2 == len(regions) == 2 * (1 + len(t.comments) + sum(1 + len(cs) for _, cs in t.answers))
            tags = ",".join(t.question.tags)
            for opening, closing in pairs:
                kind = opening.split()[1]
                attrs = markup.parse_tag(opening, kind, closing=False) + markup.parse_tag(closing, kind, closing=True)
                assert sorted(k for k, _ in attrs) == ([] if kind == "c" else ["dscore", "tags"]), doc.text
                assert all(v == tags for k, v in attrs if k == "tags")


def test_placement_is_seeded_per_question(sample_records):
    threads, _ = join(sample_records)
    texts = [format_thread(threads[10], BOUNDARIES, seed).text for seed in range(40)]
    assert texts[0] == format_thread(threads[10], BOUNDARIES, 0).text
    assert len(set(texts)) > 30  # 22 attributes placed at random: seeds differ


# ---- body HTML, tags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html, text",
    [
        ("<p>a &amp; b &lt;c&gt; &#39;d&#39; &quot;e&quot;</p>", "a & b <c> 'd' \"e\""),
        ("<p>one\n  two</p>\n\n<p>three<br/>four</p>", "one two\nthree\nfour"),
        ("<p>use <code>x &lt; y</code> here</p>", "use x < y here"),
        ("<pre><code>\nif a &lt; b:\n    pass\n\n</code></pre>", "<code>\nif a < b:\n    pass\n</code>"),
        ("<pre>no code tag</pre>", "<code>\nno code tag\n</code>"),
        ("<pre><code>unclosed &amp;", "<code>\nunclosed &\n</code>"),
        (
            "<blockquote><ul><li>x <pre><code>&lt;code&gt;y&lt;/code&gt;</code></pre></li></ul></blockquote>",
            "x\n<code>\n<code>y</code>\n</code>",
        ),
        ("<p>a&nbsp;b</p><hr><h2>T <em>i</em></h2><img src='x.png' alt='pic'>", "a\u00a0b\nT i"),
    ],
)
def test_body_text(html, text):
    assert body_text(html) == text


def test_both_tag_syntaxes():
    assert parse_tags("<python><django>") == parse_tags("|python|django|") == ("python", "django")
    assert parse_tags("<c++><c#>") == parse_tags("|c++|c#|") == ("c++", "c#")
    assert parse_tags("") == ()


# ---- reading: ranges, broken XML, archives -----------------------------------------------------


@pytest.mark.parametrize("range_bytes", [7, 100, 999, 4096])
def test_byte_ranges_read_every_row_exactly_once(sample_records, range_bytes):
    assert len(split_ranges(find_dump_files(SAMPLE_DUMP), range_bytes)) > 2
    assert read_dump(SAMPLE_DUMP, range_bytes) == sample_records


def test_one_byte_ranges_read_every_row_exactly_once(sample_records):
    path = os.path.join(SAMPLE_DUMP, "Comments.xml")
    comments = DumpFile("stackoverflow", "Comments.xml", path, os.path.getsize(path))
    got = [out for r in split_ranges([comments], 1) for out in read_range(r, 2**20)]
    assert len(got) == 18
    assert got == [r for r in sample_records if isinstance(r, StackComment) or getattr(r, "path", "") == "Comments.xml"]


BROKEN_POSTS = (
    b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
    b'  <row Id="1" PostTypeId="1" Score="1" Title="ok" Body="&lt;p&gt;fine&lt;/p&gt;" CreationDate="2020" />\n'
    b'  <row Id="2" PostTypeId="2" ParentId="1" Score="1" Body="raw < inside" CreationDate="2020" />\n'
    b'  <row Id="3" PostTypeId="2" ParentId="1" Score="1" Body="&bogus;" CreationDate="2020" />\n'
    b'  <row Id="4" PostTypeId="2" ParentId="1" Score="1" Body="\xff\xfe not utf-8" CreationDate="2020" />\n'
    b'  <row Id="5" PostTypeId="2" ParentId="1" Score="1" Body="' + b"x" * 3000 + b'" CreationDate="2020" />\n'
    b'  <row Id="6" PostTypeId="2" Score="1" Body="no parent" CreationDate="2020" />\n'
    b'  <row Id="7" PostTypeId="2" ParentId="1" Score="2" Body="&lt;p&gt;good&lt;/p&gt;" CreationDate="2020" />\n'
    b'  <row Id="8" PostTypeId="2" ParentId="1" Score="2" Body="truncated'
)


def test_broken_rows_are_rejected_and_the_rest_is_read(tmp_path):
    path = tmp_path / "Posts.xml"
    path.write_bytes(BROKEN_POSTS)
    f = DumpFile("s", "Posts.xml", str(path), len(BROKEN_POSTS))
    for range_bytes in (len(BROKEN_POSTS), 50):
        out = [o for r in split_ranges([f], range_bytes) for o in read_range(r, max_row_bytes=2048)]
        assert [o.post_id for o in out if isinstance(o, StackPost)] == [1, 7]
        reasons = [(o.reason, o.detail.split(":")[0]) for o in out if isinstance(o, Rejected)]
        offsets = [BROKEN_POSTS.index(b'<row Id="%d"' % i) for i in (2, 3, 4, 5, 8)]
        row_6 = BROKEN_POSTS.index(b'<row Id="6"')
        assert reasons == [
            ("broken-xml", f"Posts.xml row at byte {offsets[0]}"),  # a raw `<` cuts the row short
            ("broken-xml", f"Posts.xml row at byte {offsets[1]}"),  # undefined entity
            ("broken-xml", f"Posts.xml row at byte {offsets[2]}"),  # not UTF-8
            ("too-large", f"Posts.xml row at byte {offsets[3]} is over 2048 bytes"),
            ("malformed-row", f"Posts.xml row Id=6 at byte {row_6}"),
            ("broken-xml", f"Posts.xml row at byte {offsets[4]}"),  # the file ends inside row 8
        ]


def test_reading_uses_bounded_memory(tmp_path):
    row = b'  <row Id="%d" PostId="1" Score="0" Text="' + b"lorem ipsum " * 80 + b'" CreationDate="2020" />\n'
    path = tmp_path / "Comments.xml"
    with open(path, "wb") as out:
        out.write(b"<comments>\n")
        for i in range(12_000):  # ~12 MB
            out.write(row % i)
        out.write(b"</comments>\n")
    f = DumpFile("s", "Comments.xml", str(path), os.path.getsize(path))
    rows, peak = peak_python_memory(lambda: sum(1 for _ in read_range(DumpRange(f, 0, f.size), 2**20)))
    assert rows == 12_000
    assert peak < 4 * 2**20, peak  # a read block and a row, not the 12 MB file


def make_archive(path, members: dict[str, str]) -> None:
    with py7zr.SevenZipFile(path, "w") as z:
        for name, source in members.items():
            z.write(source, name)


def test_site_archive_and_split_archives_read_like_the_plain_dump(sample_records, tmp_path):
    posts, comments = (os.path.join(SAMPLE_DUMP, t) for t in ("Posts.xml", "Comments.xml"))
    make_archive(tmp_path / "stackoverflow.7z", {"Posts.xml": posts, "Comments.xml": comments, "Users.xml": posts})
    files = find_dump_files(str(tmp_path / "stackoverflow.7z"))
    assert [(f.table, f.member, f.size) for f in files] == [
        ("Posts.xml", "Posts.xml", os.path.getsize(posts)),
        ("Comments.xml", "Comments.xml", os.path.getsize(comments)),
    ]
    assert read_dump(str(tmp_path / "stackoverflow.7z"), range_bytes=100) == sample_records
    split = tmp_path / "stackoverflow"
    split.mkdir()
    make_archive(split / "stackoverflow.com-Posts.7z", {"Posts.xml": posts})
    make_archive(split / "stackoverflow.com-Comments.7z", {"Comments.xml": comments})
    assert read_dump(str(split)) == sample_records


def test_damaged_archives_become_rejected_records(tmp_path):
    posts, comments = (os.path.join(SAMPLE_DUMP, t) for t in ("Posts.xml", "Comments.xml"))
    make_archive(tmp_path / "good.7z", {"Posts.xml": posts, "Comments.xml": comments})
    data = (tmp_path / "good.7z").read_bytes()
    (tmp_path / "truncated.7z").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[40:60] = b"\x00" * 20  # inside the packed streams
    (tmp_path / "corrupt.7z").write_bytes(bytes(corrupt))
    for name in ("truncated.7z", "corrupt.7z"):
        out = read_dump(str(tmp_path / name))
        unreadable = [o for o in out if isinstance(o, Rejected) and o.reason == "unreadable-file"]
        assert {o.path for o in unreadable} == {"Posts.xml", "Comments.xml"}, name
        assert all(name in o.detail for o in unreadable)


def test_a_file_gone_at_read_time_is_one_rejected_record(tmp_path):
    f = DumpFile("s", "Posts.xml", str(tmp_path / "Posts.xml"), 5000)
    (out,) = list(read_range(DumpRange(f, 1000, 2000), 2**20))
    assert (out.stage, out.reason) == ("stackoverflow-read", "unreadable-file")
    assert "bytes 1000-2000" in out.detail


# ---- scrubbing ---------------------------------------------------------------------------------


def test_titles_bodies_and_comments_are_scrubbed_and_counted():
    aws_key = "AKIA" + "Z7VRSQ5TJKF3Q2BN"  # made up, in the AWS key-id format
    question = StackPost(
        StackPost.make_id("s", 1), "s", 1, StackPost.QUESTION, None, 2, "2020-01-01",
        title="Mail to Jane.Doe@Textkit-Dev.Com bounces",
        body="<p>My server at <code>93.184.216.34</code> rejects mail to ops@mail.example.engineering.</p>",
    )  # fmt: skip
    answer = StackPost(
        StackPost.make_id("s", 2), "s", 2, StackPost.ANSWER, 1, 3, "2020-01-02",
        body=f"<pre><code>client = boto3.client('ses', aws_access_key_id='{aws_key}')\n</code></pre>",
    )  # fmt: skip
    comments = (StackComment(StackComment.make_id("s", 5), "s", 5, 1, 0, "2020-01-03", "ask bob@kiez.berlin, he knows"),)
    thread = Thread(question, comments, ((answer, ()),))
    fn = FormatThreadFn(seed=0)
    text = fn(thread, score_boundaries=[0, 1, 2, 3, 4]).text
    for secret in ("Jane.Doe", "Textkit-Dev.Com", "93.184.216.34", "ops@", "bob@kiez", aws_key):
        assert secret not in text
    assert text.count("removed@example.com") == 3 and "<IP_ADDRESS>" in text and "aws_access_key_id='<KEY>'" in text
    assert fn.stats == {"replaced-email": 3, "replaced-ipv4": 1, "replaced-aws-key-id": 1, "documents-changed": 1}
    assert format_thread(thread, [0, 1, 2, 3, 4], 0).text.count("removed@example.com") == 0  # without scrub: as written
