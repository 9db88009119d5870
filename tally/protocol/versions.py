"""Protocol versions: the numbers every node must agree on, and what each one changed.

A chain's blocks are executed by the rules of the protocol version in force at their
height; :mod:`tally.exec.rules` maps each number below to its rules. A version, once
released, never changes: a new rule is a new version, so a node replays and audits old
blocks by the rules that made them. The version in force is recorded in state and moves
forward only through a committee proposal (``protocol.upgrade``), at a height the
committee names, so every node switches at the same block (decision 0019).

=======  ====================================================================================
version  what it is
=======  ====================================================================================
1        the rules before versioning: chain parameters fixed in genesis, headers without a
         version (chains whose genesis names no version run it; their hashes are unchanged)
2        the header names its version; chain parameters live in state (``params``) and the
         committee changes them (``params.set``); contracts may import the frozen standard
         library (``from std.<module> import ...``, decision 0904)
3        evidence bound to its chain: every checkpoint names the genesis hash (a ``genesis``
         line that every validator signature covers), and the header commits to every
         transaction's receipt (``receipts``, an RFC 9162 root), decision 0023
4        members and identities: institutions with CA certificates, real-name accounts
         registered by certificate, claims, roles scoped to a member, policies as data,
         a committee with weighted seats that votes for and against proposals which expire
         and can be withdrawn; roles change only by proposal (decision 0028)
=======  ====================================================================================
"""

from __future__ import annotations

#: Every version this build can execute, oldest first.
KNOWN_VERSIONS: tuple[int, ...] = (1, 2, 3, 4)
#: The version a new chain starts at.
LATEST_VERSION = KNOWN_VERSIONS[-1]
#: The first version whose checkpoints name their genesis and whose headers commit to
#: receipts.
BOUND_TO_GENESIS = 3
#: The first version with members, registered accounts, policies and the voting committee.
IDENTITY = 4
