"""What launches and watches runs: jobs, schedules, sensors and automation conditions."""
