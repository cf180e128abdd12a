from crmgraph.cli import main

raise SystemExit(main())
