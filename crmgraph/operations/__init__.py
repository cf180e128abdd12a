"""Operations: each write's rules as a plain function of db, catalog, plugins, actor and input."""
