"""Shared test setup.

pytest puts this folder on `sys.path` because this file is here, so test
modules in subfolders can `import gradcheck`.
"""
