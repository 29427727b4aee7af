"""Process helpers for tests of teardown."""

import os


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) direct children of ``pid``, read from /proc."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry))
    return kids
