"""StackOverflow threads: join posts and comments, select (paper §3.2), format (Figure 6c).

    posts ──── (post → question id) ──┐ link pass: sorted by (site, post id) ─ LinkComments
    comments ─ (post → comment) ──────┘   (comment → its question, or missing-parent) ─┐
                                                                                         ├ thread pass: sorted by
    posts ──── (question → post) ────────────────────────────────────────────────────────┘ (site, question id) ─ SelectThreads
        ─ Threads (spill files) ─ format, with the dscore buckets of the kept scores ─ Document

Comments name only the post they are on, so a first join finds each comment's
question; the second gathers a question, its answers and all their comments. Both are
external sorts on scratch storage, so no post body or comment text crosses a shuffle
(`transforms.stackoverflow.join`); this module holds the rules, as plain functions.

Selection, per question (§3.2; limits from the `stackoverflow` config section):
  * a question needs at least one answer, else it is left out (`unanswered`); the
    paper includes "all questions that have at least one answer", so one whose answers
    all score below the minimum is kept with none of them, unless `require_kept_answer`
    is set (then it is left out as `no-selected-answer`);
  * answers scored below `min_answer_score` (0) are left out (`low-score`); of the
    others the `max_answers` (10) highest-scored are kept (`answer-limit` for the rest),
    ties going to the earlier CreationDate, then the lower Id;
  * of the comments on the question and on each kept answer, the `max_comments` (5)
    earliest by CreationDate, then Id, are kept (`comment-limit`); comments on a left-out
    post are `parent-not-selected`;
  * answers and comments whose question (or post) is not in the dump are
    `missing-parent`; a repeated Id keeps one row (`duplicate-id`).

Format (Figure 6c): the question (title, a blank line, the body), its comments, then
each answer (highest score first) followed by its comments:

    <| q tags=python,django |>
    Django - How to display a form with user input

    I'm trying to ...
    <code>
    from django.shortcuts import render
    </code>
    <|/ q dscore=3 |>
    <| c |>
    Why aren't you using the django authentication library?
    <|/ c |>
    <| a dscore=4 |>
    You need to add your form to the template:
    ...
    <|/ a tags=python,django |>

Attributes: `tags` (the question's, comma-separated) on the question and, as Figures 6c
and 11 show, on every answer; `dscore`, the post's score bucket (`transforms.formatting.buckets`,
boundaries over the scores of every question and answer kept). Figure 6c ends with
`<| a tags=python,django |>` where the closing answer tag is meant: we write the
closing tag as `transforms.formatting.markup` does everywhere, `<|/ a ... |>`. Comments carry no
attributes. Each attribute goes to the opening or the closing tag with probability 0.5
(`markup.wrap_random`), all drawn from one generator per question,
`record_rng(seed, site, question id)`.

Bodies are HTML: they become text with the standard library's HTML parser. Each
`<pre>` block (with or without `<code>` inside) becomes `<code>`, a newline, the code
verbatim, a newline and `</code>`; other markup is dropped (inline `<code>` keeps its
text, block elements and `<br>` end a line, runs of whitespace become one space) and
entities are decoded. Comment text is plain in the dumps and is kept as it is.

Accounting. Stage "stackoverflow-join" reads every post and comment that was read;
each is kept (it is part of a thread) or rejected with one of the reasons above; its
stat `threads` counts the questions kept. Stage "stackoverflow-format" reads the
threads, one per kept question, and writes one Document each.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple, Sequence

from schemas import stage_names
from schemas.config import StackOverflowConfig
from schemas.records import MAX_EXCERPT_BYTES, Rejected, StackComment, StackPost, excerpt_of
from transforms.stackoverflow.source import COMMENTS, POSTS, SOURCE


@dataclass(frozen=True)
class Thread:
    """A kept question with its kept comments, and its kept answers (best first) with theirs."""

    question: StackPost
    comments: tuple[StackComment, ...]
    answers: tuple[tuple[StackPost, tuple[StackComment, ...]], ...]

    def scores(self) -> list[int]:
        """One score per question and answer: what the dscore buckets are computed over."""
        return [self.question.score] + [answer.score for answer, _ in self.answers]


class Selection(NamedTuple):
    thread: Thread | None
    kept: int  # posts and comments in the thread
    rejected: list[Rejected]


def reject(record: StackPost | StackComment, reason: str, detail: str) -> Rejected:
    table, what = (POSTS, "post") if isinstance(record, StackPost) else (COMMENTS, "comment")
    number = record.post_id if isinstance(record, StackPost) else record.comment_id
    excerpt = excerpt_of(record.body if isinstance(record, StackPost) else record.text, MAX_EXCERPT_BYTES)
    return Rejected(
        record.id, stage_names.STACKOVERFLOW_JOIN, reason, f"{what} {number}: {detail}", SOURCE, record.site, table, excerpt
    )


def post_order(post: StackPost) -> tuple:
    return (post.creation_date, post.post_id, post.body, post.title, post.score)


def comment_order(comment: StackComment) -> tuple:
    return (comment.creation_date, comment.comment_id, comment.text, comment.score)


def unique(records: Iterable, number, order, rejected: list[Rejected]) -> list:
    """The records with distinct numbers (the first in `order` of each), sorted by `order`."""
    seen, out = set(), []
    for record in sorted(records, key=order):
        if number(record) in seen:
            rejected.append(reject(record, "duplicate-id", "the dump repeats this Id"))
        else:
            seen.add(number(record))
            out.append(record)
    return out


def link_comments(post_questions: Sequence[int], comments: Iterable[StackComment]) -> Iterator:
    """Comments on one post → (question id, comment), or a Rejected when the post is not in the dump."""
    for comment in comments:
        if post_questions:
            yield min(post_questions), comment
        else:
            yield reject(comment, "missing-parent", f"post {comment.post_id} is not a question or answer of the dump")


def select_thread(posts: Iterable[StackPost], comments: Iterable[StackComment], limits: StackOverflowConfig) -> Selection:
    """One question's posts (itself and its answers) and comments → the thread to keep, if any."""
    rejected: list[Rejected] = []
    posts = unique(posts, lambda p: p.post_id, post_order, rejected)
    comments = unique(comments, lambda c: c.comment_id, comment_order, rejected)
    questions = [p for p in posts if p.post_type == StackPost.QUESTION]
    answers = [p for p in posts if p.post_type == StackPost.ANSWER]
    if not questions:
        for record in answers + comments:
            rejected.append(reject(record, "missing-parent", "its question is not in the dump"))
        return Selection(None, 0, rejected)
    question = questions[0]

    ranked = sorted(answers, key=lambda a: (-a.score, a.creation_date, a.post_id))
    scored = [a for a in ranked if a.score >= limits.min_answer_score]
    for a in ranked:
        if a.score < limits.min_answer_score:
            rejected.append(reject(a, "low-score", f"score {a.score} < {limits.min_answer_score}"))
    for a in scored[limits.max_answers :]:
        rejected.append(reject(a, "answer-limit", f"not among the {limits.max_answers} best-scored answers"))
    kept_answers = scored[: limits.max_answers]
    keep = bool(kept_answers) or (bool(answers) and not limits.require_kept_answer)
    if not keep:
        reason = "no-selected-answer" if answers else "unanswered"
        why = f"all {len(answers)} answers scored below {limits.min_answer_score}" if answers else "no answers"
        rejected.append(reject(question, reason, why))

    on_post = collections.defaultdict(list)
    for c in comments:  # already sorted by CreationDate, then Id
        on_post[c.post_id].append(c)
    kept_ids = ({question.post_id} | {a.post_id for a in kept_answers}) if keep else set()
    for post_id, post_comments in on_post.items():
        if post_id not in kept_ids:
            for c in post_comments:
                rejected.append(reject(c, "parent-not-selected", f"post {post_id} is not in a kept thread"))
            continue
        for c in post_comments[limits.max_comments :]:
            rejected.append(reject(c, "comment-limit", f"not among the {limits.max_comments} earliest on post {post_id}"))
    if not keep:
        return Selection(None, 0, rejected)

    def kept_comments(post_id: int) -> tuple[StackComment, ...]:
        return tuple(on_post.get(post_id, ())[: limits.max_comments])

    thread = Thread(question, kept_comments(question.post_id), tuple((a, kept_comments(a.post_id)) for a in kept_answers))
    kept = 1 + len(thread.comments) + sum(1 + len(cs) for _, cs in thread.answers)
    return Selection(thread, kept, rejected)
