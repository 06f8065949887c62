# Read by `jupyter lab` started in this folder (and by `make lab`): nbdev's pre-save hook cleans each notebook as
# JupyterLab saves it (kernelspec display name, language_info, execution counts; settings.ini has jupyter_hooks = True),
# so opening a notebook does not mark it changed in git.
c = get_config()  # noqa: F821  (Jupyter's config loader provides it)
c.ContentsManager.pre_save_hook = "nbdev.clean.clean_jupyter"
