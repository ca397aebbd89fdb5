"""Private key blocks in text: PEM and OpenSSH blocks, encrypted or truncated, and PuTTY keys.

A block is one `-----BEGIN <label>PRIVATE KEY-----` header with the `END` line of the
same label after it, when only key material lies between them (base64, `Proc-Type` /
`DEK-Info` / `Comment` headers, and the line breaks, quotes, commas and `\\n` escapes
that code puts between a key's lines). A BEGIN whose END is missing, or is further
than code away, is a truncated key when key material follows it: the header and that
material are the block. A BEGIN constant followed by code is no key, and the code
between it and an unrelated END constant stays. A PuTTY key runs from its
`PuTTY-User-Key-File-N:` line through its `Private-MAC:` line (or its last key line).
"""

from __future__ import annotations

import re

BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----")
_SEP = r"(?:\s|\\+[nr]|[\"',+])+"
_MATERIAL = re.compile(r"(?:(?:Proc-Type|DEK-Info|Comment|Version|Hash):[^\n\\\"]*|[A-Za-z0-9+/=\s\"',]|\\+[nr])*+")
_TRUNCATED = re.compile(r"(?:%s(?:[A-Za-z0-9+/=]{16,}|(?:Proc-Type|DEK-Info):[^\n\\\"]*))+" % _SEP)
PUTTY = re.compile(r"PuTTY-User-Key-File-\d+:")
_PUTTY_BODY = re.compile(r"(?:%s(?:[A-Za-z0-9+/=]{16,}|[A-Z][\w-]*:[^\n\\\"]*))+" % _SEP)
_PUTTY_MAC = re.compile(r"Private-MAC: *[0-9a-fA-F]+")
MAX_BLOCK_CHARS = 16384  # an RSA-8192 key is about 6,400 characters
MIN_MATERIAL_CHARS = 48  # base64 after a header that makes a (truncated) key


def key_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of each private key block, in order."""
    blocks = []
    if "PRIVATE KEY" in text:
        blocks += _pem_blocks(text)
    if "PuTTY-User-Key-File" in text:
        blocks += _putty_blocks(text)
    return sorted(blocks)


def _pem_blocks(text: str) -> list[tuple[int, int]]:
    blocks, at = [], 0
    for begin in BEGIN.finditer(text):
        if begin.start() < at:
            continue
        end_marker = f"-----END {begin.group(1)}-----"
        end = text.find(end_marker, begin.end(), begin.end() + MAX_BLOCK_CHARS)
        if end >= 0 and _MATERIAL.fullmatch(text, begin.end(), end) and _material(text[begin.end() : end]):
            at = end + len(end_marker)
            blocks.append((begin.start(), at))
            continue
        body = _TRUNCATED.match(text, begin.end())
        if body and _material(body.group()):
            at = body.end()
            blocks.append((begin.start(), at))
    return blocks


def _putty_blocks(text: str) -> list[tuple[int, int]]:
    blocks = []
    for header in PUTTY.finditer(text):
        line_end = text.find("\n", header.end())
        line_end = len(text) if line_end < 0 else line_end
        body = _PUTTY_BODY.match(text, line_end)
        end = body.end() if body else line_end
        mac = _PUTTY_MAC.search(text, header.end(), end)
        blocks.append((header.start(), mac.end() if mac else end))
    return blocks


def _material(between: str) -> bool:
    return sum(len(run) for run in re.findall(r"[A-Za-z0-9+/=]{16,}", between)) >= MIN_MATERIAL_CHARS
