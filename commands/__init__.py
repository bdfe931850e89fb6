"""The commands (train, evaluate, predict, export, serve, tune, pretrain): one module each, its
``main(argv)`` behind both ``python <command>.py`` in a checkout and ``tweetcls <command>`` installed.
No command imports another: what they share lives in the packages below (training/, tweetcls/)."""
