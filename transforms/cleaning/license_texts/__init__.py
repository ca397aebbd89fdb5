"""Canonical license texts that `transforms.license` matches repository files against.

One `<SPDX id>.txt` per license, taken from the texts Debian ships in its common
licenses and from license files of widely used packages, with copyright lines and
titles removed; the Apache and GNU texts stop at "END OF TERMS AND CONDITIONS",
since many projects leave out the appendix that follows.
"""
