"""The browser demo as a script: ``python demo/app.py [--bundle B] [--port 7860] ...`` (the options of
``usedge demo``). The page itself lives in usedge/demo/app.py so it installs with the package."""
from usedge.cli.demo import demo

if __name__ == "__main__":
    demo()
