"""The signed apt repository: reprepro kept all or nothing (``repository``) and its
key (``signing``)."""
