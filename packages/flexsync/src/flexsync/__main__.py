from flexsync.cli import main

raise SystemExit(main())
