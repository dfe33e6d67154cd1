using Vim.Tools;

return VimCli.Run(args);
