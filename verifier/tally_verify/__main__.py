"""``tally-verify bundle.json [--genesis-hash H] [--json]``: exit 0 when the bundle is
valid, 1 when it does not prove what it claims, 2 when it is unreadable or malformed."""

from __future__ import annotations

import argparse
import json
import sys

from tally_verify import EvidenceError, verify_bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tally-verify", description=__doc__)
    parser.add_argument("bundle")
    parser.add_argument("--genesis-hash", help="the chain's genesis hash, obtained out of band")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = parser.parse_args(argv)
    try:
        with open(args.bundle, "rb") as file:
            verdict = verify_bundle(file.read(), genesis_hash=args.genesis_hash)
    except OSError as exc:
        print(f"cannot read {args.bundle}: {exc}", file=sys.stderr)
        return 2
    except EvidenceError as exc:
        print(json.dumps({"valid": False, "reason": exc.reason, "message": exc.message})
              if args.json else f"INVALID ({exc.reason}): {exc.message}",
              file=sys.stdout if args.json else sys.stderr)
        return 2 if exc.reason == "format" else 1
    print(json.dumps({"valid": True, "facts": verdict.facts, "event": verdict.event,
                      "signers": verdict.signers, "genesis_pinned": verdict.genesis_pinned})
          if args.json else "\n  ".join(["VALID", *verdict.facts]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
