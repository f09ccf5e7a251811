pytest_plugins = ["fakefal.plugin"]
