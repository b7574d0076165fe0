"""POSIX users and groups: who owns a file, who may read it, and who is in which group.

A filesystem connector names principals the way the machine that owns the files does.
By default that is this machine (``pwd``/``grp``); a connector may instead name a
``passwd`` and a ``group`` file (same format as ``/etc/passwd`` and ``/etc/group``): for
a folder exported from another machine whose users are not this one's, and for tests,
which cannot safely change the system's groups.

The ACL is a list of *grants*, unioned at search time: ``user:OWNER`` when the owner may
read (``u+r``), ``group:GROUP`` when the group may (``g+r``), ``public`` when anyone on the
machine may (``o+r``). Two POSIX rules are not modelled: owner bits that *deny* the owner
what the group bits allow (POSIX applies only the owner class to the owner), and search
(``x``) permission on the folders above the file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PUBLIC = "public"


@dataclass(frozen=True)
class PosixUser:
    name: str
    uid: int
    gid: int
    """The primary group: a member without being listed in the group file."""


@dataclass(frozen=True)
class PosixGroup:
    name: str
    gid: int
    members: tuple[str, ...] = ()


@dataclass
class PosixDirectory:
    """Users and groups of one machine: this one's, or read from passwd/group files."""

    users: list[PosixUser] = field(default_factory=list)
    groups: list[PosixGroup] = field(default_factory=list)
    system: bool = True
    """Names not in the lists are looked up in this machine's databases (lazily)."""

    def __post_init__(self) -> None:
        self._uid = {u.uid: u.name for u in self.users}
        self._gid = {g.gid: g.name for g in self.groups}

    @classmethod
    def load(cls, passwd_file: str | None = None, group_file: str | None = None) -> PosixDirectory:
        """This machine's users and groups, each replaced by a file when one is named."""
        users = _read_passwd(passwd_file) if passwd_file else _system_users()
        groups = _read_group(group_file) if group_file else _system_groups()
        return cls(users, groups, system=not (passwd_file or group_file))

    def user_name(self, uid: int) -> str:
        name = self._uid.get(uid)
        if name is None:
            name = _system_user_name(uid) if self.system else str(uid)
        return name

    def group_name(self, gid: int) -> str:
        name = self._gid.get(gid)
        if name is None:
            name = _system_group_name(gid) if self.system else str(gid)
        return name

    def acl(self, st: os.stat_result) -> list[str]:
        """The principals that may read a file with this ``os.stat`` result."""
        mode, uid, gid = st.st_mode, st.st_uid, st.st_gid
        acl: list[str] = []
        if mode & stat.S_IRUSR:
            acl.append(f"user:{self.user_name(uid)}")
        if mode & stat.S_IRGRP:
            acl.append(f"group:{self.group_name(gid)}")
        if mode & stat.S_IROTH:
            acl.append(PUBLIC)
        return acl

    def memberships(self) -> dict[str, list[str]]:
        """Every group's members: those it lists plus users whose primary group it is."""
        out: dict[str, set[str]] = {g.name: set(g.members) for g in self.groups}
        for user in self.users:
            out.setdefault(self.group_name(user.gid), set()).add(user.name)
        return {name: sorted(members) for name, members in sorted(out.items())}


def _fields(path: str, count: int) -> list[list[str]]:
    """Colon-separated lines with at least ``count`` fields (comments and blanks skipped)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            parts = line.split(":")
            if len(parts) >= count and parts[2].isdigit():
                rows.append(parts)
    return rows


def _read_passwd(path: str) -> list[PosixUser]:
    return [
        PosixUser(p[0], int(p[2]), int(p[3]) if p[3].isdigit() else -1) for p in _fields(path, 4)
    ]


def _read_group(path: str) -> list[PosixGroup]:
    return [
        PosixGroup(p[0], int(p[2]), tuple(m for m in p[3].split(",") if m))
        for p in _fields(path, 4)
    ]


def _system_users() -> list[PosixUser]:
    import pwd

    return [PosixUser(u.pw_name, u.pw_uid, u.pw_gid) for u in pwd.getpwall()]


def _system_groups() -> list[PosixGroup]:
    import grp

    return [PosixGroup(g.gr_name, g.gr_gid, tuple(g.gr_mem)) for g in grp.getgrall()]


@lru_cache(maxsize=1024)
def _system_user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=1024)
def _system_group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
