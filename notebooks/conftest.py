"""nbval settings: HTML/JS views (circuitsvis) carry random ids and are not compared; stderr holds warnings and
progress output that differ between machines. Printed, tolerance-checked lines are compared."""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("text/html", "application/javascript", "stderr",
                                   "application/vnd.jupyter.widget-view+json")
