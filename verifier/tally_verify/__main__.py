"""``python -m tally_verify``: the ``tally-verify`` command (:func:`tally_verify.main`)."""

from tally_verify import main

if __name__ == "__main__":
    raise SystemExit(main())
