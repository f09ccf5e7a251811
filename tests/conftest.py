pytest_plugins = ["fakefal.plugin", "s3server"]
